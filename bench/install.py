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


def npm_install(
    registry: str,
    token: str,
    names: t.Sequence[str],
    workdir: Path,
    runs: int = 3,
    timeout: float = 600,
) -> dict[str, t.Any]:
    """Run ``runs`` cold installs (empty cache, no lockfile, no node_modules); median seconds."""
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)
    write_project(project, registry, token, names)
    # Only the project's .npmrc: the user's own config must not change what is measured.
    empty_rc = workdir / "empty-npmrc"
    empty_rc.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env["NPM_CONFIG_USERCONFIG"] = str(empty_rc)
    env["NPM_CONFIG_UPDATE_NOTIFIER"] = "false"
    times = []
    for _ in range(runs):
        shutil.rmtree(project / "node_modules", ignore_errors=True)
        (project / "package-lock.json").unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="npm-cache-", dir=workdir) as cache:
            cmd = [
                "npm", "install", "--cache", cache, "--no-audit", "--no-fund",
                "--ignore-scripts", "--loglevel=error",
            ]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(
                cmd, cwd=project, env=env, capture_output=True, text=True, timeout=timeout
            )
            elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"npm install failed against {registry}:\n{proc.stderr[-2000:]}")
        scope_dir = project / "node_modules" / "@bench"
        installed = len(list(scope_dir.iterdir())) if scope_dir.is_dir() else 0
        if installed != len(names):
            raise RuntimeError(f"npm installed {installed} of {len(names)} packages")
        times.append(round(elapsed, 3))
    return {"runs": times, "median_s": statistics.median(times), "packages": len(names)}
