"""GitHub authorisation end to end: a live nmr asks a local fake GitHub, driven by real npm.

Users (tokens) and their levels on the repositories of the fake GitHub:

    alice  admin on acme/widgets, acme/gadgets, acme/tools   (the maintainer)
    bob    push on acme/widgets, admin on acme/other          (a writer)
    carol  pull on acme/widgets, acme/gadgets, acme/tools     (a reader)
    dave   nothing on acme's repositories                     (an outsider)
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from tests.builders import escape, publish_body
from tests.e2e.harness import make_package, make_project, npm_login
from tests.fakegithub import FakeGitHub

PKG = "@acme/widgets"
TOKENS = {
    "alice": "ghp_alice_0123456789",
    "bob": "ghp_bob_0123456789",
    "carol": "ghp_carol_0123456789",
    "dave": "ghp_dave_0123456789",
}


@pytest.fixture
def gh():
    with FakeGitHub() as fake:
        for login, token in TOKENS.items():
            fake.add_user(login, token=token)
        fake.add_repo("acme/widgets", private=True, perms={"alice": "admin", "bob": "push", "carol": "pull"})
        for repo in ("acme/gadgets", "acme/tools"):
            fake.add_repo(repo, private=True, perms={"alice": "admin", "carol": "pull"})
        fake.add_repo("acme/other", private=True, perms={"bob": "admin"})
        fake.add_repo("other/widgets", private=True, perms={"alice": "admin"})
        yield fake


def github_sections(gh, **github):
    return {"auth": {"type": "github", "github": {"api_url": gh.url, "host": "github.com", **github}}}


def test_permissions_with_real_npm(gh, start_nmr, make_npm, tmp_path):
    server = start_nmr(github_sections(gh))
    alice, bob, carol, dave = (make_npm(server.url, TOKENS[u]) for u in ("alice", "bob", "carol", "dave"))
    anonymous = make_npm(server.url, token=None)
    src = tmp_path / "src"

    # The maintainer publishes; the package is bound to acme/widgets.
    make_package(src, PKG, "1.0.0", repository="git+https://github.com/acme/widgets.git")
    alice.run("publish", cwd=src)
    # A writer (push) publishes a new version.
    make_package(src, PKG, "1.1.0", repository="github:acme/widgets")
    bob.run("publish", cwd=src)

    # A reader installs but cannot publish.
    project = make_project(tmp_path / "reader-app", {PKG: "^1.0.0"})
    carol.run("install", cwd=project)
    assert (project / "node_modules" / "@acme" / "widgets" / "package.json").exists()
    make_package(src, PKG, "1.2.0", repository="github:acme/widgets")
    denied = carol.run("publish", cwd=src, check=False)
    assert denied.returncode != 0 and "E403" in denied.stderr
    assert "acme/widgets" in denied.stderr and "push" in denied.stderr

    # An outsider sees nothing: 404 on view and install, as if the package did not exist.
    view = dave.run("view", PKG, check=False)
    assert view.returncode != 0 and "E404" in view.stderr
    install = dave.run("install", cwd=make_project(tmp_path / "outsider-app", {PKG: "^1.0.0"}), check=False)
    assert install.returncode != 0 and "E404" in install.stderr
    tarball = requests.get(
        f"{server.url}/@acme/widgets/-/widgets-1.0.0.tgz",
        headers={"Authorization": f"Bearer {TOKENS['dave']}"},
        timeout=10,
    )
    assert tarball.status_code == 404

    # No token: 401 with a WWW-Authenticate challenge.
    none = anonymous.run("view", PKG, check=False)
    assert none.returncode != 0 and "E401" in none.stderr
    r = requests.get(f"{server.url}/{escape(PKG)}", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert (
        requests.get(
            f"{server.url}/{escape(PKG)}", headers={"Authorization": "Bearer ghp_nobody"}, timeout=10
        ).status_code
        == 401
    )

    # Push on another repository of the same owner does not let bob move the package there.
    make_package(src, PKG, "1.3.0", repository="github:acme/other")
    moved = bob.run("publish", cwd=src, check=False)
    assert moved.returncode != 0 and ("E403" in moved.stderr or "E404" in moved.stderr)
    # ...and a version naming the bound repository in another spelling is fine.
    make_package(src, PKG, "1.3.0", repository={"type": "git", "url": "git@github.com:acme/widgets.git"})
    bob.run("publish", cwd=src)

    # A scope that does not match the repository owner is refused, even for an admin there.
    make_package(tmp_path / "other", "@acme/stolen", "1.0.0", repository="github:other/widgets")
    stolen = alice.run("publish", cwd=tmp_path / "other", check=False)
    assert stolen.returncode != 0 and "E403" in stolen.stderr and "@acme" in stolen.stderr

    # Without a repository field the publish says what to add.
    make_package(tmp_path / "norepo", "@acme/norepo", "1.0.0")
    norepo = alice.run("publish", cwd=tmp_path / "norepo", check=False)
    assert norepo.returncode != 0 and "E400" in norepo.stderr and "repository" in norepo.stderr

    # dist-tags and deprecate need push; unpublish needs admin.
    assert carol.run("dist-tag", "add", f"{PKG}@1.0.0", "old", check=False).returncode != 0
    bob.run("dist-tag", "add", f"{PKG}@1.0.0", "old")
    bob.run("deprecate", f"{PKG}@1.0.0", "use 1.1")
    assert "acme/widgets" in bob.run("unpublish", f"{PKG}@1.0.0", check=False).stderr
    alice.run("unpublish", f"{PKG}@1.0.0")
    assert json.loads(carol.run("view", PKG, "versions", "--json").stdout) == ["1.1.0", "1.3.0"]

    # Search lists only what the caller may read.
    assert PKG in carol.run("search", "widgets").stdout
    assert PKG not in dave.run("search", "widgets", check=False).stdout

    # Tokens never reach the server's log.
    log = server.log()
    assert "published @acme/widgets@1.1.0" in log  # the log did record the session
    for token in TOKENS.values():
        assert token not in log


def test_login_whoami_logout(gh, start_nmr, make_npm):
    server = start_nmr(github_sections(gh))
    npm = make_npm(server.url, token=None)
    code, out = npm_login(npm, "alice", TOKENS["alice"])
    assert code == 0, out
    assert "Logged in" in out
    assert npm.run("whoami").stdout.strip() == "alice"
    npm.run("logout")
    assert npm.run("whoami", check=False).returncode != 0
    code, out = npm_login(npm, "alice", TOKENS["bob"])  # bob's token is not alice's
    assert code != 0 and "E401" in out and "Incorrect or missing password" in out
    for token in TOKENS.values():
        assert token not in server.log()


def test_cold_install_of_30_packages_costs_O_repositories_github_calls(gh, start_nmr, make_npm, tmp_path):
    server = start_nmr(github_sections(gh))
    repos = ["acme/widgets", "acme/gadgets", "acme/tools"]
    names = [f"@acme/pkg{i:02d}" for i in range(30)]
    for i, name in enumerate(names):
        body = publish_body(name, "1.0.0", repository=f"github:{repos[i % 3]}")
        r = requests.put(
            f"{server.url}/{escape(name)}",
            json=body,
            headers={"Authorization": f"Bearer {TOKENS['alice']}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    server.stop()
    server.start()  # a cold permission cache
    gh.reset_counts()

    carol = make_npm(server.url, TOKENS["carol"])
    project = make_project(tmp_path / "app", dict.fromkeys(names, "^1.0.0"))
    carol.run("install", cwd=project)
    assert all((project / "node_modules" / "@acme" / n.split("/")[1]).is_dir() for n in names)
    counts = gh.counts()
    total = sum(counts.values())
    direct = sum(n for path, n in counts.items() if path.startswith("/repos/"))
    # 30 packuments + 30 tarballs from 3 repositories: one /user, one page of /user/repos.
    assert direct == 0, counts
    assert total <= 3, counts


def test_github_outage_gives_503_or_a_cached_answer_never_401(gh, start_nmr, make_npm, tmp_path):
    server = start_nmr(github_sections(gh, cache_ttl=1, negative_ttl=1, stale_grace=600))
    alice = make_npm(server.url, TOKENS["alice"])
    src = make_package(tmp_path / "src", PKG, "1.0.0", repository="github:acme/widgets")
    alice.run("publish", cwd=src)
    assert alice.run("view", PKG, "version").stdout.strip() == "1.0.0"

    gh.fail("error")
    time.sleep(1.5)  # past cache_ttl, inside stale_grace: the answer cached before the outage is used
    assert alice.run("view", PKG, "version").stdout.strip() == "1.0.0"
    # A token GitHub was never asked about cannot be decided: 503 with Retry-After, never 401.
    r = requests.get(f"{server.url}/{escape(PKG)}", headers={"Authorization": f"Bearer {TOKENS['carol']}"}, timeout=30)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert "GitHub" in r.json()["error"]
    carol = make_npm(server.url, TOKENS["carol"])
    view = carol.run("view", PKG, check=False)
    assert view.returncode != 0 and "E401" not in view.stderr

    gh.fail("ratelimit")
    r = requests.get(f"{server.url}/{escape(PKG)}", headers={"Authorization": f"Bearer {TOKENS['dave']}"}, timeout=30)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0

    gh.fail(None)
    time.sleep(11)  # nmr pauses GitHub calls for 10 s after a connection-level failure
    assert carol.run("view", PKG, "version").stdout.strip() == "1.0.0"


def test_node_resolves_the_installed_package(gh, start_nmr, make_npm, tmp_path):
    server = start_nmr(github_sections(gh))
    bob = make_npm(server.url, TOKENS["bob"])
    make_package(
        tmp_path / "src", PKG, "2.0.0", repository="github:acme/widgets", code="module.exports = 'from nmr';\n"
    )
    bob.run("publish", cwd=tmp_path / "src")
    project = make_project(tmp_path / "app", {PKG: "2.0.0"})
    bob.clear_cache()
    bob.run("install", cwd=project)
    out = subprocess.run(
        ["node", "-e", f"console.log(require('{PKG}'))"], cwd=project, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "from nmr"
