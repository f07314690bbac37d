"""Start the registries under test on loopback and get a bearer token for each."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import typing as t
from pathlib import Path

import requests

from bench.procs import Server, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Running:
    """A started registry: its base URL, a bearer token, and the process to sample and stop."""

    name: str
    url: str
    token: str
    server: Server
    info: dict[str, t.Any] = dataclasses.field(default_factory=dict)


def start_verdaccio(shared: Path, workdir: Path, startup_timeout: float = 900) -> Running:
    """Verdaccio 6 from the shared anchor script (installs it with npm on first use)."""
    port = free_port()
    data = workdir / "verdaccio"
    script = shared / "anchors" / "start-verdaccio.sh"
    server = Server(
        "verdaccio", ["sh", str(script), str(port), str(data)], workdir / "verdaccio.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{url}/-/ping", startup_timeout, ok=lambda s: s == 200)
        resp = requests.put(
            f"{url}/-/user/org.couchdb.user:bench",
            json={"name": "bench", "password": "benchpass1", "type": "user"},
            auth=("bench", "benchpass1"),  # logs in if the user exists, else adds it
            timeout=30,
        )
        resp.raise_for_status()
        token = resp.json()["token"]
    except BaseException:
        server.stop()
        raise
    return Running("verdaccio", url, token, server, {"auth": "htpasswd + JWT"})


def nmr_command() -> list[str]:
    """How to run ``nmr``: the console script beside this Python, else its entry point."""
    script = Path(sys.executable).parent / "nmr"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from nmr.cli import main; sys.exit(main())"]


def nmr_available() -> bool:
    return (REPO_ROOT / "nmr" / "cli.py").is_file()


def start_nmr(workdir: Path, threads: int | None = None, startup_timeout: float = 60) -> Running:
    """nmr with LevelDB + local storage, upstream off, only ``@bench`` hosted.

    TODO: GitHub auth against tests/fakegithub.py once it is on main; until then the
    benchmark runs nmr with ``auth.type = "none"`` (no token check at all, which flatters nmr).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = workdir / "nmr"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    lines = [
        "[server]",
        f'public_url = "{url}"',
        *([f"threads = {threads}"] if threads else []),
        "[logging]",
        'level = "warning"',
        "[registry]",
        'scopes = ["@bench"]',
        "[auth]",
        'type = "none"',
        "[metadata.leveldb]",
        f'path = "{root / "db"}"',
        "[storage.local]",
        f'path = "{root / "storage"}"',
        "[upstream]",
        'mode = "off"',
    ]
    config = root / "nmr.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [*nmr_command(), "serve", "--config", str(config), "--bind", f"127.0.0.1:{port}"]
    server = Server("nmr", cmd, workdir / "nmr.log", env=env, cwd=root)
    try:
        server.wait_http(f"{url}/-/ping", startup_timeout, ok=lambda s: s == 200)
    except BaseException:
        server.stop()
        raise
    return Running("nmr", url, "bench-token-not-checked", server, {"auth": "none"})
