"""Start the registries under test on loopback and get a bearer token for each."""

from __future__ import annotations

import dataclasses
import json
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
    server = Server("verdaccio", ["sh", str(script), str(port), str(data)], workdir / "verdaccio.log")
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


def github_auth_available() -> bool:
    """nmr can check tokens against GitHub here: the backend and the fake GitHub both exist."""
    return (REPO_ROOT / "nmr" / "auth" / "github.py").is_file() and (REPO_ROOT / "tests" / "fakegithub.py").is_file()


BENCH_OWNER = "bench"  # @bench/* must live in repositories of the GitHub owner "bench"
BENCH_TOKEN = "ghp_bench_token"  # a token the fake GitHub knows; never a real one


def start_fake_github() -> t.Any:
    """The fake GitHub API (tests/fakegithub.py), in this process, knowing one user and repo.

    The user has admin on ``bench/packages``, the repository every seeded package names.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.fakegithub import FakeGitHub

    gh = FakeGitHub().start()
    gh.add_user(BENCH_OWNER, token=BENCH_TOKEN, orgs=[BENCH_OWNER])
    gh.add_repo(f"{BENCH_OWNER}/packages", private=True, perms={BENCH_OWNER: "admin"})
    return gh


def toml_str(value: object) -> str:
    """A TOML basic string (JSON's escapes are TOML's) for a URL or a path."""
    return json.dumps(str(value))


def start_nmr(workdir: Path, auth: str = "none", threads: int | None = None, startup_timeout: float = 60) -> Running:
    """nmr with LevelDB + local storage, upstream off, only ``@bench`` hosted.

    ``auth="github"`` checks every token against a fake GitHub API on loopback (as in
    production, with nmr's decision cache); ``auth="none"`` checks nothing, which flatters nmr.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = workdir / "nmr"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    gh = start_fake_github() if auth == "github" else None
    if gh is not None:
        # Repository URLs in the seed name github.com; the API is the fake.
        auth_lines = ["[auth]", 'type = "github"', "[auth.github]", f"api_url = {toml_str(gh.url)}"]
        auth_lines.append('host = "github.com"')
    else:
        auth_lines = ["[auth]", 'type = "none"']
    lines = [
        "[server]",
        f"public_url = {toml_str(url)}",
        *([f"threads = {threads}"] if threads else []),
        "[logging]",
        'level = "warning"',
        "[registry]",
        'scopes = ["@bench"]',
        *auth_lines,
        "[metadata.leveldb]",
        f"path = {toml_str(root / 'db')}",
        "[storage.local]",
        f"path = {toml_str(root / 'storage')}",
        "[upstream]",
        'mode = "off"',
    ]
    config = root / "nmr.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [*nmr_command(), "serve", "--config", str(config), "--bind", f"127.0.0.1:{port}"]
    server = Server("nmr", cmd, workdir / "nmr.log", env=env, cwd=root)
    info: dict[str, t.Any] = {
        "auth": "github (fake GitHub API on loopback)" if gh is not None else "none",
        "config": lines,
    }
    if gh is not None:

        def stop_github() -> None:
            info["github_calls"] = gh.counts()  # nmr's cache should keep these few
            gh.stop()

        server.on_stop(stop_github)
    try:
        server.wait_http(f"{url}/-/ping", startup_timeout, ok=lambda s: s == 200)
    except BaseException:
        server.stop()
        raise
    token = BENCH_TOKEN if gh is not None else "bench-token-not-checked"
    return Running("nmr", url, token, server, info)
