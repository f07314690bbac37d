"""npm, pnpm and yarn (v1) installing through nmr alone: hosted, unscoped and foreign-scope packages.

The unscoped and foreign-scope packages live on a stub upstream registry on 127.0.0.1; each
client's only registry is nmr (``registry=<nmr>``). After a first install the stub is stopped
and a fresh project with an empty client cache installs again, from nmr's cache alone.

pnpm 9 and yarn 1 are installed once with the machine's own npm and its normal configuration
(the only network use the tests make) into a directory kept across sessions.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import typing as t
from pathlib import Path

import pytest

from tests.e2e.harness import make_package, make_project
from tests.stubregistry import StubRegistry

TOOLS = ("pnpm@9", "yarn@1")
HOSTED = "@acme/e2e-pkg"
LEFT, DEP, RIGHT = "e2e-left", "e2e-dep", "@pub/e2e-right"
EXPECTED = f"{HOSTED}@1.0.0 uses {LEFT}@1.1.0 uses {DEP}@2.0.1 | {RIGHT}@3.0.0"


@pytest.fixture(scope="session")
def js_tools(request: pytest.FixtureRequest) -> Path:
    """A directory with pnpm 9 and yarn 1 in node_modules/.bin, installed once and kept."""
    cache = getattr(request.config, "cache", None)
    key = "nmr-js-tools-" + "-".join(tool.replace("@", "") for tool in TOOLS)
    root = cache.mkdir(key) if cache is not None else Path(tempfile.gettempdir()) / key
    bins = [root / "node_modules" / ".bin" / tool.split("@")[0] for tool in TOOLS]
    if not all(b.exists() for b in bins):
        # The machine's normal npm configuration: this is the one step that uses the network.
        proc = subprocess.run(
            ["npm", "install", "--prefix", str(root), "--no-audit", "--no-fund", "--loglevel=error", *TOOLS],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not all(b.exists() for b in bins):
            pytest.fail(f"could not install {' '.join(TOOLS)} with npm:\n{proc.stdout}\n{proc.stderr}")
    return root / "node_modules" / ".bin"


@pytest.fixture
def stub() -> t.Iterator[StubRegistry]:
    registry = StubRegistry().start()
    registry.add(DEP, "2.0.0")
    registry.add(DEP, "2.0.1", code=f"module.exports = {json.dumps(DEP + '@2.0.1')};\n")
    registry.add(LEFT, "1.0.0")
    registry.add(
        LEFT,
        "1.1.0",
        dependencies={DEP: "^2.0.0"},
        code=f"module.exports = {json.dumps(LEFT + '@1.1.0 uses ')} + require({json.dumps(DEP)});\n",
    )
    registry.add(RIGHT, "3.0.0")
    # The stub also knows the hosted name: nmr must never ask it.
    registry.add(HOSTED, "9.9.9")
    yield registry
    registry.stop()


def client_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith(("npm_config_", "yarn_", "pnpm_"))}
    env.update({"HOME": str(home), "NO_COLOR": "1", "CI": "true"})
    env["NPM_CONFIG_USERCONFIG"] = str(home / ".npmrc")
    env["NPM_CONFIG_GLOBALCONFIG"] = str(home / "npmrc-global")
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def install(client: str, tools: Path, registry: str, project: Path, work: Path) -> None:
    """Install ``project`` with ``client`` whose only registry is ``registry``; caches under ``work``."""
    home = work / "home"
    home.mkdir(parents=True)
    (home / "npmrc-global").write_text("")
    lines = [f"registry={registry}/", "fund=false", "update-notifier=false", "fetch-retries=0"]
    env = client_env(home)
    if client == "npm":
        lines.append(f"cache={work / 'npm-cache'}")
        (project / ".npmrc").write_text("\n".join(lines) + "\n")
        run(["npm", "install", "--audit=true"], project, env)
    elif client == "pnpm":
        lines += [f"store-dir={work / 'pnpm-store'}", f"cache-dir={work / 'pnpm-cache'}"]
        (project / ".npmrc").write_text("\n".join(lines) + "\n")
        run([str(tools / "pnpm"), "install", "--reporter=append-only"], project, env)
    else:
        (project / ".npmrc").write_text("\n".join(lines) + "\n")
        (home / ".yarnrc").write_text("disable-self-update-check true\n")
        cache = work / "yarn-cache"
        run([str(tools / "yarn"), "install", "--non-interactive", "--cache-folder", str(cache)], project, env)


def check_installed(project: Path) -> None:
    code = f"const h = require({json.dumps(HOSTED)}), r = require({json.dumps(RIGHT)});console.log(h + ' | ' + r)"
    ran = subprocess.run(["node", "-e", code], cwd=project, capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == EXPECTED


@pytest.mark.parametrize("client", ["npm", "pnpm", "yarn"])
def test_install_through_nmr_alone_then_from_its_cache_with_upstream_down(
    client, start_nmr, make_npm, js_tools, stub, tmp_path
):
    server = start_nmr(
        {
            "auth": {"type": "none"},
            "registry": {"scopes": ["@acme"]},
            # max_age 0: every packument read revalidates, so the second install below
            # really meets a dead upstream and is served from stale cache entries.
            "upstream": {"url": stub.url, "mode": "proxy", "max_age": 0, "timeout": 5},
        }
    )
    publisher = make_npm(server.url)
    src = make_package(
        tmp_path / "src",
        HOSTED,
        "1.0.0",
        extra={"dependencies": {LEFT: "^1.0.0"}},
        code=f"module.exports = {json.dumps(HOSTED + '@1.0.0 uses ')} + require({json.dumps(LEFT)});\n",
    )
    publisher.run("publish", cwd=src)
    # A forwarded name cannot be published, with forwarding on.
    make_package(tmp_path / "src2", LEFT, "7.0.0")
    refused = publisher.run("publish", cwd=tmp_path / "src2", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr and "@acme" in refused.stderr

    deps = {HOSTED: "^1.0.0", RIGHT: "^3.0.0"}
    project = make_project(tmp_path / "online", deps)
    install(client, js_tools, server.url, project, tmp_path / "online-client")
    check_installed(project)
    if client == "npm":
        lock = json.loads((project / "package-lock.json").read_text())
        resolved = [e["resolved"] for p, e in lock["packages"].items() if p]
        assert len(resolved) == 4 and all(r.startswith(server.url + "/") for r in resolved), resolved
        bulk = [body for path, body in stub.audit_bodies if path.endswith("/advisories/bulk")]
        assert bulk and all(HOSTED not in body for body in bulk) and any(LEFT in body for body in bulk)
    elif client == "pnpm":
        lock_text = (project / "pnpm-lock.yaml").read_text()
        assert f"{LEFT}@1.1.0" in lock_text and stub.url not in lock_text
    elif client == "yarn":
        lock_text = (project / "yarn.lock").read_text()
        assert lock_text.count(f'resolved "{server.url}/') == 4 and stub.url not in lock_text

    for path in (f"/{DEP}/-/{DEP}-2.0.1.tgz", f"/{LEFT}/-/{LEFT}-1.1.0.tgz", f"/{RIGHT}/-/e2e-right-3.0.0.tgz"):
        assert stub.count(path) == 1, f"{path} fetched {stub.count(path)} times: once by nmr, never by the client"
    stored = sorted(p.name for p in (server.workdir / "storage").rglob("*.tgz"))
    assert len(stored) == 4, stored
    assert not any("acme" in p for p in stub.paths()), "a hosted name reached upstream"

    stub.stop()
    offline = make_project(tmp_path / "offline", deps)
    install(client, js_tools, server.url, offline, tmp_path / "offline-client")
    check_installed(offline)
    assert "serving the cached copy" in server.log()

    if client == "npm":  # the cache is on disk: a restarted nmr serves it with upstream still down
        server.stop()
        server.start()
        again = make_project(tmp_path / "restarted", deps)
        install(client, js_tools, server.url, again, tmp_path / "restarted-client")
        check_installed(again)
