"""The real npm CLI against a real gunicorn-served nmr (LevelDB + local disk, auth none)."""

from __future__ import annotations

import json
import subprocess
import threading

import requests

from tests.builders import escape, publish_body
from tests.e2e.harness import make_package, make_project

PKG = "@acme/e2e-widgets"


def test_npm_workflow_end_to_end(start_nmr, make_npm, tmp_path):
    server = start_nmr()
    npm = make_npm(server.url)

    src = tmp_path / "src"
    for version, args in (("1.0.0", []), ("1.1.0", []), ("1.2.0-beta.0", ["--tag", "beta"])):
        make_package(src, PKG, version, code=f"module.exports = {json.dumps(version)};\n")
        out = npm.run("publish", *args, cwd=src)
        assert f"+ {PKG}@{version}" in out.stdout

    view = json.loads(npm.run("view", PKG, "--json").stdout)
    assert view["versions"] == ["1.0.0", "1.1.0", "1.2.0-beta.0"]
    assert view["dist-tags"] == {"latest": "1.1.0", "beta": "1.2.0-beta.0"}
    assert view["dist"]["tarball"] == f"{server.url}/@acme/e2e-widgets/-/e2e-widgets-1.1.0.tgz"
    assert npm.run("view", f"{PKG}@1.0.0", "version").stdout.strip() == "1.0.0"

    # Install into a fresh project with an empty cache, then run the installed code.
    npm.clear_cache()
    project = make_project(tmp_path / "app", {PKG: "^1.0.0"})
    npm.run("install", cwd=project)
    ran = subprocess.run(
        ["node", "-e", f"console.log(require('{PKG}'))"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == "1.1.0"
    lock = json.loads((project / "package-lock.json").read_text())
    entry = lock["packages"][f"node_modules/{PKG}"]
    assert entry["resolved"].startswith(server.url) and entry["integrity"].startswith("sha512-")

    # dist-tags
    npm.run("dist-tag", "add", f"{PKG}@1.0.0", "stable")
    tags = npm.run("dist-tag", "ls", PKG).stdout
    assert "stable: 1.0.0" in tags and "latest: 1.1.0" in tags
    npm.run("dist-tag", "rm", PKG, "stable")
    assert "stable" not in npm.run("dist-tag", "ls", PKG).stdout
    refused = npm.run("dist-tag", "rm", PKG, "latest", check=False)
    assert refused.returncode != 0 and "latest" in refused.stderr

    # deprecate and undeprecate
    npm.run("deprecate", f"{PKG}@1.0.0", "use 1.1.0 instead")
    assert npm.run("view", f"{PKG}@1.0.0", "deprecated").stdout.strip() == "use 1.1.0 instead"
    npm.run("undeprecate", f"{PKG}@1.0.0")
    assert npm.run("view", f"{PKG}@1.0.0", "deprecated").stdout.strip() == ""
    npm.run("deprecate", f"{PKG}@1.0.0", "again")
    npm.run("deprecate", f"{PKG}@1.0.0", "")
    assert npm.run("view", f"{PKG}@1.0.0", "deprecated").stdout.strip() == ""

    # A republish of an existing version fails with a clear message, from npm's own check
    # and, with --force past it, from the server.
    make_package(src, PKG, "1.1.0", code="module.exports = 'changed';\n")
    again = npm.run("publish", cwd=src, check=False)
    assert again.returncode != 0 and "cannot publish over the previously published versions" in again.stderr
    forced = npm.run("publish", "--force", cwd=src, check=False)
    assert forced.returncode != 0
    assert "409" in forced.stderr and "cannot publish over the previously published versions: 1.1.0" in forced.stderr

    # search, ping, whoami
    assert PKG in npm.run("search", "e2e-widgets").stdout
    assert "PONG" in npm.run("ping").stderr + npm.run("ping").stdout
    assert npm.run("whoami").stdout.strip() == "anonymous"

    # unpublish one version: gone, tombstoned, number never reusable
    npm.run("unpublish", f"{PKG}@1.2.0-beta.0")
    view = json.loads(npm.run("view", PKG, "--json").stdout)
    assert view["versions"] == ["1.0.0", "1.1.0"] and "beta" not in view["dist-tags"]
    gone = requests.get(f"{server.url}/@acme/e2e-widgets/-/e2e-widgets-1.2.0-beta.0.tgz", timeout=10)
    assert gone.status_code == 410
    make_package(src, PKG, "1.2.0-beta.0")
    reuse = npm.run("publish", "--tag", "beta", cwd=src, check=False)
    assert reuse.returncode != 0 and "can never be reused" in reuse.stderr

    # unpublish the whole package
    npm.run("unpublish", PKG, "--force")
    missing = npm.run("view", PKG, check=False)
    assert missing.returncode != 0 and "E404" in missing.stderr
    assert list((server.workdir / "storage").rglob("*.tgz")) == []


def test_twenty_concurrent_publishes_over_http_all_land(start_nmr):
    server = start_nmr()
    name = "@acme/concurrent"
    results: list[int] = []

    def publish(i: int) -> None:
        r = requests.put(f"{server.url}/{escape(name)}", json=publish_body(name, f"2.0.{i}"), timeout=60)
        results.append(r.status_code)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [201] * 20
    doc = requests.get(f"{server.url}/{escape(name)}", timeout=10).json()
    assert sorted(doc["versions"]) == sorted(f"2.0.{i}" for i in range(20))
    assert len(list((server.workdir / "storage").rglob("*.tgz"))) == 20


def test_server_restart_keeps_packages(start_nmr, make_npm, tmp_path):
    server = start_nmr()
    npm = make_npm(server.url)
    make_package(tmp_path / "p", "@acme/durable", "1.0.0")
    npm.run("publish", cwd=tmp_path / "p")
    server.stop()
    server.start()
    assert requests.get(f"{server.url}/@acme%2fdurable", timeout=10).json()["dist-tags"]["latest"] == "1.0.0"
