"""Read ``docker/Dockerfile`` and ``.dockerignore`` so tests can run the image's steps without Docker."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import shlex
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"


@dataclasses.dataclass
class Dockerfile:
    env: dict[str, str]  # every ENV, in order
    runs: list[str]  # every RUN command (shell form)
    healthcheck: str  # the HEALTHCHECK CMD (shell form)
    entrypoint: list[str]
    cmd: list[str]
    user: str
    expose: list[str]
    volumes: list[str]


def _instructions(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _exec_form(value: str) -> list[str]:
    return json.loads(value) if value.startswith("[") else ["/bin/sh", "-c", value]


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    env: dict[str, str] = {}
    runs: list[str] = []
    healthcheck, entrypoint, cmd, user = "", [], [], ""
    expose: list[str] = []
    volumes: list[str] = []
    for keyword, rest in _instructions(path.read_text()):
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif keyword == "RUN":
            runs.append(rest)
        elif keyword == "HEALTHCHECK":
            healthcheck = rest.split(" CMD ", 1)[1].strip()
        elif keyword == "ENTRYPOINT":
            entrypoint = _exec_form(rest)
        elif keyword == "CMD":
            cmd = _exec_form(rest)
        elif keyword == "USER":
            user = rest
        elif keyword == "EXPOSE":
            expose += rest.split()
        elif keyword == "VOLUME":
            volumes += _exec_form(rest) if rest.startswith("[") else rest.split()
    return Dockerfile(env, runs, healthcheck, entrypoint, cmd, user, expose, volumes)


def dockerignore_patterns(root: Path = REPO_ROOT) -> list[str]:
    lines = (root / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif fnmatch.fnmatch(rel, pattern) or ("/" not in pattern and fnmatch.fnmatch(parts[0], pattern)):
            return True
    return False


def copy_build_context(dest: Path, root: Path = REPO_ROOT) -> None:
    """Copy what ``COPY . /src`` would copy: the repository minus ``.dockerignore`` matches."""
    patterns = dockerignore_patterns(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        dirnames[:] = [d for d in dirnames if not _ignored(f"{rel_dir}/{d}".lstrip("/"), patterns)]
        for name in filenames:
            rel = f"{rel_dir}/{name}".lstrip("/")
            if _ignored(rel, patterns):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(dirpath, name), target)
