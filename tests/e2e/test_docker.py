"""The Docker image: built and run when a Docker engine is reachable; its steps replayed in a virtualenv always.

``test_image_steps_in_a_fresh_virtualenv`` does what the Dockerfile does, without Docker: it
copies the build context (honouring ``.dockerignore``), runs the Dockerfile's ``pip install``
in a new virtualenv, starts ``docker/entrypoint.sh`` with the Dockerfile's ``ENV`` (``/data``
replaced by a temporary directory) as an unprivileged user, runs the ``HEALTHCHECK``
command, then publishes and installs with npm.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import requests

from tests.dockerfile import REPO_ROOT, copy_build_context, parse_dockerfile
from tests.e2e.harness import free_port, make_package, make_project

NOBODY = 65534


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wait_for_ping(url: str, proc: subprocess.Popen[bytes] | None, log: Path | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"nmr exited with {proc.returncode}:\n{log.read_text() if log else ''}")
        try:
            if requests.get(f"{url}/-/ping", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nmr did not answer within {timeout}s:\n{log.read_text() if log else ''}")


def unprivileged_python() -> tuple[list[str], str] | None:
    """``(setpriv prefix, python)``: a Python 3.11+ that uid 65534 can run (the venv links to it)."""
    as_user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    candidates = [os.path.realpath(sys.executable), "/usr/local/bin/python3", "/usr/bin/python3"]
    for python in dict.fromkeys(candidates):
        if not os.path.exists(python):
            continue
        # Through a shell, as the entrypoint runs it: setpriv itself may exec a path the user cannot reach.
        check = "import sys, venv; sys.exit(sys.version_info < (3, 11))"
        probe = [*as_user, "/bin/sh", "-c", '"$0" -c "$1"', python, check]
        if subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0:
            return as_user, python
    return None


def publish_and_install(url: str, make_npm: t.Callable[..., t.Any], work: Path) -> None:
    npm = make_npm(url)
    src = make_package(work / "src", "@acme/imaged", "1.0.0", code="module.exports = 'from the image';\n")
    assert "+ @acme/imaged@1.0.0" in npm.run("publish", cwd=src).stdout
    npm.clear_cache()
    project = make_project(work / "app", {"@acme/imaged": "1.0.0"})
    npm.run("install", cwd=project)
    ran = subprocess.run(
        ["node", "-e", "console.log(require('@acme/imaged'))"], cwd=project, capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip() == "from the image"


def test_dockerfile_shape():
    df = parse_dockerfile()
    assert df.user and df.user != "root" and df.user != "0"
    assert df.expose == ["3000"] and df.volumes == ["/data"]
    assert df.env["NMR_METADATA__LEVELDB__PATH"] == "/data/db"
    assert df.env["NMR_STORAGE__LOCAL__PATH"] == "/data/storage"
    assert "/-/ping" in df.healthcheck
    assert any("pip install" in run and "/src" in run for run in df.runs)
    assert df.entrypoint == ["/usr/local/bin/nmr-entrypoint"] and df.cmd == ["serve"]
    assert (REPO_ROOT / "docker" / "Dockerfile").read_text().startswith("# nmr image")
    assert "FROM python:3.11-slim" in (REPO_ROOT / "docker" / "Dockerfile").read_text()


@pytest.mark.slow
def test_image_steps_in_a_fresh_virtualenv(make_npm, tmp_path, record_property):
    df = parse_dockerfile()
    (install,) = [run for run in df.runs if "pip install" in run]
    pip_args = install.split("&&")[0].split()  # "pip install --no-cache-dir /src"
    assert pip_args[:2] == ["pip", "install"] and pip_args[-1] == "/src"

    # Outside pytest's 0700 temp tree, so the unprivileged user can reach the virtualenv.
    base = Path(tempfile.mkdtemp(prefix="nmr-image-"))
    os.chmod(base, 0o755)
    proc: subprocess.Popen[bytes] | None = None
    try:
        src = base / "src"
        copy_build_context(src)
        assert (src / "setup.cfg").is_file() and (src / "nmr" / "app.py").is_file()
        assert not (src / "tests").exists() and not (src / ".git").exists()

        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("NMR_") and k != "PYTHONPATH"}
        as_user: list[str] = []
        python = sys.executable
        if os.geteuid() == 0:
            found = shutil.which("setpriv") and unprivileged_python()
            if found:
                as_user, python = found
            else:
                reason = "running as root with no setpriv, or no Python 3.11+ that uid 65534 may run"
                record_property("non_root", f"skipped: {reason}")
                print(f"NOTE: nmr runs as root in this test: {reason}")
        venv = base / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), *pip_args[1:-1], str(src)],
            env=clean_env,
            cwd=base,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        entrypoint = base / "nmr-entrypoint"
        shutil.copy(src / "docker" / "entrypoint.sh", entrypoint)
        os.chmod(entrypoint, 0o755)

        data = base / "data"
        data.mkdir()
        port = free_port()
        env = dict(clean_env)
        env.update({k: v.replace("/data", str(data), 1) if v.startswith("/data") else v for k, v in df.env.items()})
        env.update(
            {
                "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "HOME": str(data),
                "NMR_SERVER__HOST": "127.0.0.1",
                "NMR_SERVER__PORT": str(port),
                "NMR_AUTH__TYPE": "none",
                "NMR_UPSTREAM__MODE": "off",
            }
        )
        assert env["NMR_METADATA__LEVELDB__PATH"] == str(data / "db")

        if as_user:
            os.chown(data, NOBODY, NOBODY)
            # The entrypoint refuses a data directory the user cannot write, with the fix.
            locked = base / "locked"
            locked.mkdir(mode=0o755)
            refused = subprocess.run(
                [*as_user, str(entrypoint), *df.cmd],
                env={**env, "NMR_METADATA__LEVELDB__PATH": str(locked / "db")},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert refused.returncode == 1 and "chown -R 65534:65534" in refused.stderr

        log = base / "nmr.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*as_user, str(entrypoint), *df.cmd], env=env, cwd=data, stdout=out, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, proc, log)
        # exec all the way down: the process we started is gunicorn's master, as the user we chose.
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert uid == (str(NOBODY) if as_user else str(os.geteuid()))
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert str(venv / "bin" / "nmr").encode() in cmdline and b"serve" in cmdline

        health = subprocess.run(
            ["/bin/sh", "-c", df.healthcheck], env=env, capture_output=True, timeout=30, check=False
        )
        assert health.returncode == 0, health.stderr
        assert requests.get(f"{url}/-/ready", timeout=10).json()["ok"] is True

        publish_and_install(url, make_npm, tmp_path)
        assert (data / "db" / "CURRENT").is_file()
        stored = list((data / "storage").rglob("*.tgz"))
        assert len(stored) == 1 and stored[0].name.startswith("imaged-1.0.0-")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "Handling signal: term" in log.read_text()
        # The data outlived the process: a second start serves the package.
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [*as_user, str(entrypoint), *df.cmd], env=env, cwd=data, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for_ping(url, proc, log)
        assert requests.get(f"{url}/@acme%2fimaged", timeout=10).json()["dist-tags"] == {"latest": "1.0.0"}
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_image_builds_runs_as_non_root_and_stops_gracefully(make_npm, tmp_path):
    if not docker_available():
        pytest.skip("no Docker engine reachable (`docker info` failed)")
    tag = f"nmr-test:{uuid.uuid4().hex[:12]}"
    name = f"nmr-test-{uuid.uuid4().hex[:12]}"
    port = free_port()
    built = subprocess.run(
        ["docker", "build", "-f", "docker/Dockerfile", "-t", tag, "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    try:
        run = [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:3000",
            "-e",
            "NMR_AUTH__TYPE=none",
            "-e",
            "NMR_UPSTREAM__MODE=off",
            tag,
        ]
        subprocess.run(run, check=True, capture_output=True, timeout=120)
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, None, None, timeout=120)
        uid = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True, check=True)
        assert uid.stdout.strip() != "0"
        assert requests.get(f"{url}/-/ready", timeout=10).json()["ok"] is True
        publish_and_install(url, make_npm, tmp_path)
        subprocess.run(["docker", "stop", "-t", "70", name], check=True, capture_output=True, timeout=120)
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True, text=True, check=True
        )
        assert state.stdout.strip() == "0"
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=True)
        assert "ready: metadata=leveldb (/data/db); storage=local (/data/storage)" in logs.stdout + logs.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False, timeout=120)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False, timeout=120)
