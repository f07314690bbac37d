"""End-to-end harness: a real ``nmr serve`` (gunicorn) on 127.0.0.1 and real npm clients.

``NmrServer`` runs the server in its own process with ``NMR_*`` variables as configuration and
captures its log (tests grep it). ``Npm`` runs the npm CLI with an isolated user config, global
config and cache, so nothing of the machine's own npm setup leaks in and nothing leaves
the machine: the default registry is the nmr under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import requests

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def flatten(sections: dict[str, t.Any], prefix: str = "NMR_") -> dict[str, str]:
    """``{"storage": {"s3": {"bucket": "b"}}}`` -> ``{"NMR_STORAGE__S3__BUCKET": '"b"'}``."""
    env: dict[str, str] = {}
    for key, value in sections.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict) and key != "scope_owners":
            env.update(flatten(value, name + "__"))
        else:
            env[name] = toml_value(value)
    return env


def toml_value(value: t.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


class NmrServer:
    def __init__(self, workdir: Path, sections: dict[str, t.Any], env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "nmr.log"
        base: dict[str, t.Any] = {
            "metadata": {"leveldb": {"path": str(workdir / "db")}},
            "storage": {"local": {"path": str(workdir / "storage")}},
            "upstream": {"mode": "off"},
            "server": {"threads": 8},
        }
        for section, values in sections.items():
            base[section] = _deep_merge(base.get(section, {}), values)
        self.sections = base
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NMR_")}
        self.env.update(flatten(base))
        # Run the nmr of this checkout even when it is not installed (editable or not).
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p)
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> NmrServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nmr.cli", "serve", "--bind", f"127.0.0.1:{self.port}"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nmr exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/-/ping", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nmr did not answer within {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _deep_merge(base: dict[str, t.Any], extra: dict[str, t.Any]) -> dict[str, t.Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class Npm:
    """One npm user: own .npmrc, cache and HOME. ``run`` returns the finished process."""

    def __init__(self, workdir: Path, registry: str, token: str | None = None, scope: str = "@acme") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.registry = registry.rstrip("/") + "/"
        self.userconfig = workdir / "npmrc"
        self.globalconfig = workdir / "npmrc-global"
        self.globalconfig.write_text("")
        self.cache = workdir / "cache"
        lines = [
            f"registry={self.registry}",
            f"{scope}:registry={self.registry}",
            "audit=false",
            "fund=false",
            "update-notifier=false",
            "fetch-retries=0",
        ]
        nerf = self.registry.split(":", 1)[1]
        if token:
            lines.append(f"{nerf}:_authToken={token}")
        self.userconfig.write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update(
            {
                "HOME": str(self.workdir),
                "NPM_CONFIG_USERCONFIG": str(self.userconfig),
                "NPM_CONFIG_GLOBALCONFIG": str(self.globalconfig),
                "NPM_CONFIG_CACHE": str(self.cache),
                "NO_COLOR": "1",
            }
        )
        return env

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["npm", *args],
            cwd=cwd or self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"npm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)


def make_package(
    root: Path,
    name: str,
    version: str,
    *,
    repository: str | None = None,
    extra: dict[str, t.Any] | None = None,
    code: str = "module.exports = 42;\n",
) -> Path:
    """A directory npm can publish."""
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, t.Any] = {
        "name": name,
        "version": version,
        "main": "index.js",
        "license": "MIT",
    }
    if repository:
        manifest["repository"] = repository
    manifest.update(extra or {})
    (root / "package.json").write_text(json.dumps(manifest, indent=2))
    (root / "index.js").write_text(code)
    (root / "README.md").write_text(f"# {name}\n")
    return root


def make_project(root: Path, dependencies: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(
        json.dumps({"name": "consumer", "version": "1.0.0", "private": True, "dependencies": dependencies})
    )
    return root


def npm_login(npm: Npm, username: str, password: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``npm login --auth-type=legacy`` on a pseudo-terminal, answering its two prompts.

    npm reads the password with echo off, which needs a terminal: piped stdin ends the command
    before it asks. Returns the exit code and everything npm printed.
    """
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        ["npm", "login", "--auth-type=legacy"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=npm.env(),
        cwd=npm.workdir,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    answers = [(b"Username:", username), (b"Password:", password)]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
                if answers and answers[0][0] in output.split(b"\n")[-1] + chunk:
                    os.write(leader, answers.pop(0)[1].encode() + b"\r")
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return code, output.decode(errors="replace")
