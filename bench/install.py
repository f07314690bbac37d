"""Cold ``npm install`` of a project that depends on every seeded package."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path
from urllib.parse import urlsplit


def write_project(project: Path, registry: str, token: str, names: t.Sequence[str]) -> None:
    """package.json depending on ``names`` and the .npmrc a developer would have."""
    project.mkdir(parents=True, exist_ok=True)
    deps = {name: "^1.0.0" for name in names}
    pkg = {"name": "bench-app", "version": "1.0.0", "private": True, "dependencies": deps}
    (project / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    base = registry.rstrip("/") + "/"
    nerf = "//" + urlsplit(base).netloc + "/"
    npmrc = f"@bench:registry={base}\n{nerf}:_authToken={token}\n"
    (project / ".npmrc").write_text(npmrc)


class ColdInstall:
    """A project in ``workdir`` whose every ``run()`` is one cold install (timed).

    Cold: a new empty ``--cache`` each time, no lockfile, no node_modules.
    """

    def __init__(
        self, registry: str, token: str, names: t.Sequence[str], workdir: Path,
        timeout: float = 600,
    ) -> None:  # fmt: skip
        self.registry = registry
        self.names = list(names)
        self.workdir = workdir
        self.timeout = timeout
        self.project = workdir / "project"
        if self.project.exists():
            shutil.rmtree(self.project)
        write_project(self.project, registry, token, names)
        # Only the project's .npmrc: the user's own config must not change what is measured.
        empty_rc = workdir / "empty-npmrc"
        empty_rc.write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        self.env["NPM_CONFIG_USERCONFIG"] = str(empty_rc)
        self.env["NPM_CONFIG_UPDATE_NOTIFIER"] = "false"
        self.times: list[float] = []

    def run(self) -> float:
        """One cold install; returns (and records) its wall-clock seconds."""
        shutil.rmtree(self.project / "node_modules", ignore_errors=True)
        (self.project / "package-lock.json").unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="npm-cache-", dir=self.workdir) as cache:
            cmd = [
                "npm", "install", "--cache", cache, "--no-audit", "--no-fund",
                "--ignore-scripts", "--loglevel=error",
            ]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(
                cmd, cwd=self.project, env=self.env, capture_output=True, text=True,
                timeout=self.timeout, check=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"npm install from {self.registry} failed:\n{proc.stderr[-2000:]}")
        scope_dir = self.project / "node_modules" / "@bench"
        installed = len(list(scope_dir.iterdir())) if scope_dir.is_dir() else 0
        if installed != len(self.names):
            raise RuntimeError(f"npm installed {installed} of {len(self.names)} packages")
        self.times.append(round(elapsed, 3))
        return elapsed

    def summary(self) -> dict[str, t.Any]:
        median = statistics.median(self.times) if self.times else None
        return {"runs": self.times, "median_s": median, "packages": len(self.names)}


def npm_install(
    registry: str, token: str, names: t.Sequence[str], workdir: Path, runs: int = 3,
) -> dict[str, t.Any]:  # fmt: skip
    """``runs`` cold installs in a row; the median counts."""
    job = ColdInstall(registry, token, names, workdir)
    for _ in range(runs):
        job.run()
    return job.summary()
