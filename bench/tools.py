"""Make sure the external tools the benchmark drives are installed (Debian packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEBIAN_PACKAGES = {"wrk": "wrk", "nginx": "nginx"}


def which(tool: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def _apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"missing {', '.join(packages)}: install them (apt-get install -y ...)")
    cmd = ["apt-get", "install", "-y", "-qq", *packages]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, env=env, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(cmd, env=env, check=True)


def ensure_tools() -> dict[str, str]:
    """Install wrk and nginx if missing; check node and npm. Returns tool -> path."""
    missing = [pkg for tool, pkg in DEBIAN_PACKAGES.items() if not which(tool)]
    if missing:
        print(f"bench: installing {' '.join(missing)} with apt-get", file=sys.stderr)
        _apt_install(missing)
    paths = {}
    for tool in [*DEBIAN_PACKAGES, "node", "npm"]:
        path = which(tool)
        if not path:
            raise SystemExit(f"bench: {tool} not found on PATH")
        paths[tool] = path
    return paths


def find_shared(start: Path) -> Path:
    """The project's ``shared/`` folder: ``../shared`` from the repo root, or above it.

    ``NMR_BENCH_SHARED`` overrides the search (e.g. for a checkout somewhere else).
    """
    env = os.environ.get("NMR_BENCH_SHARED")
    if env:
        return Path(env)
    for parent in [start, *start.parents]:
        candidate = parent / "shared"
        if (candidate / "anchors" / "start-verdaccio.sh").is_file():
            return candidate
    raise SystemExit(f"bench: no shared/anchors/start-verdaccio.sh above {start}")
