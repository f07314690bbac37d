"""GitHubAuth over real HTTP against FakeGitHub (and FakeGitHub's own behaviour)."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
import requests

from nmr.auth import Action, Repository
from nmr.auth.github import GitHubAuth
from nmr.errors import Forbidden, NotFound, Unauthorized, Unavailable
from tests.fakegithub import FakeClock, FakeGitHub, build

WIDGETS = Repository("acme", "widgets")


@pytest.fixture
def gh() -> t.Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("alice", token="ghp_alice", orgs=["acme"])
        fake.add_user("bob", token="ghp_bob")
        fake.add_repo("acme/widgets", private=True, perms={"alice": "push"})
        fake.add_repo("acme/docs", private=False, perms={"alice": "admin"})
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_auth(gh: FakeGitHub, clock: FakeClock) -> t.Iterator[t.Callable[..., GitHubAuth]]:
    made: list[GitHubAuth] = []

    def make(**kwargs: t.Any) -> GitHubAuth:
        kwargs.setdefault("api_url", gh.url)
        kwargs.setdefault("clock", clock)
        auth = GitHubAuth(**kwargs)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


def test_identify_and_authorize_over_http(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth]) -> None:
    auth = make_auth()
    alice = auth.identify("ghp_alice")
    bob = auth.identify("ghp_bob")
    assert (alice.login, bob.login) == ("alice", "bob")
    auth.authorize(alice, Action.WRITE, "@acme/widgets", WIDGETS)
    with pytest.raises(Forbidden):
        auth.authorize(alice, Action.UNPUBLISH, "@acme/widgets", WIDGETS)
    with pytest.raises(NotFound):  # private, no access: invisible
        auth.authorize(bob, Action.READ, "@acme/widgets", WIDGETS)
    auth.authorize(bob, Action.READ, "@acme/docs", Repository("acme", "docs"))  # public
    with pytest.raises(Forbidden):
        auth.authorize(bob, Action.WRITE, "@acme/docs", Repository("acme", "docs"))
    with pytest.raises(Unauthorized):
        auth.identify("ghp_nobody")
    assert gh.calls("/repos/acme/widgets") == 1  # bob's; alice's came from her list
    assert gh.calls("/repos/acme/docs") == 1


def test_orgs_gate_over_http(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth]) -> None:
    auth = make_auth(orgs=["ACME"])
    assert auth.identify("ghp_alice").login == "alice"
    with pytest.raises(Forbidden):
        auth.identify("ghp_bob")


def test_login_over_http(make_auth: t.Callable[..., GitHubAuth]) -> None:
    auth = make_auth()
    assert auth.login("Alice", "ghp_alice") == "ghp_alice"
    with pytest.raises(Unauthorized):
        auth.login("alice", "ghp_bob")


def test_pagination_costs_pages_not_packages(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth]) -> None:
    for i in range(250):
        gh.add_repo(f"acme/r{i:03d}", perms={"carol": "pull"})
    gh.add_user("carol", token="ghp_carol")
    auth = make_auth()
    carol = auth.identify("ghp_carol")
    for i in range(250):
        auth.authorize(carol, Action.READ, f"@acme/p{i}", Repository("acme", f"r{i:03d}"))
    assert gh.counts() == {"/user": 1, "/user/repos": 3}


def test_etag_revalidation_over_http(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth], clock: FakeClock) -> None:
    auth = make_auth()
    alice = auth.identify("ghp_alice")
    auth.authorize(alice, Action.WRITE, "@acme/widgets", WIDGETS)
    clock.advance(301)
    auth.identify("ghp_alice")
    auth.authorize(alice, Action.WRITE, "@acme/widgets", WIDGETS)
    assert gh.not_modified == 2  # /user and the one /user/repos page
    gh.set_permission("acme/widgets", "alice", "pull")
    clock.advance(301)
    with pytest.raises(Forbidden):  # the page changed, so its ETag did: a 200 with news
        auth.authorize(alice, Action.WRITE, "@acme/widgets", WIDGETS)


def test_revoked_access_becomes_404(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth], clock: FakeClock) -> None:
    auth = make_auth()
    alice = auth.identify("ghp_alice")
    auth.authorize(alice, Action.READ, "@acme/widgets", WIDGETS)
    gh.set_permission("acme/widgets", "alice", None)
    clock.advance(301)
    with pytest.raises(NotFound):
        auth.authorize(alice, Action.READ, "@acme/widgets", WIDGETS)


@pytest.mark.parametrize("mode", ["error", "drop", "ratelimit", "secondary"])
def test_failures_are_503_and_recover(
    gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth], clock: FakeClock, mode: str
) -> None:
    auth = make_auth()
    gh.fail(mode, reset_in=120)
    with pytest.raises(Unavailable) as exc:
        auth.identify("ghp_alice")
    retry_after = int(exc.value.headers["Retry-After"])
    if mode in ("ratelimit", "secondary"):
        assert 115 <= retry_after <= 122
    gh.fail(None)
    clock.advance(retry_after + 1)
    assert auth.identify("ghp_alice").login == "alice"


def test_slow_github_times_out_into_503(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth]) -> None:
    auth = make_auth(timeout=1)
    gh.slow(3.0)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        auth.identify("ghp_alice")
    assert time.monotonic() - started < 2.5  # no retries, no throttling on the request path
    gh.slow(0)


def test_stale_grace_over_http(gh: FakeGitHub, make_auth: t.Callable[..., GitHubAuth], clock: FakeClock) -> None:
    auth = make_auth(stale_grace=600)
    alice = auth.identify("ghp_alice")
    auth.authorize(alice, Action.READ, "@acme/widgets", WIDGETS)
    gh.fail("drop")
    clock.advance(301)
    assert auth.identify("ghp_alice").login == "alice"
    auth.authorize(alice, Action.READ, "@acme/widgets", WIDGETS)
    clock.advance(600)
    with pytest.raises(Unavailable):
        auth.identify("ghp_alice")


def test_enterprise_prefix(make_auth: t.Callable[..., GitHubAuth]) -> None:
    with FakeGitHub(prefix="/api/v3") as ghe:
        ghe.add_user("alice", token="ghp_alice")
        ghe.add_repo("acme/widgets", perms={"alice": "admin"})
        assert ghe.url.endswith("/api/v3")
        auth = make_auth(api_url=ghe.url)
        alice = auth.identify("ghp_alice")
        auth.authorize(alice, Action.REBIND, "@acme/widgets", WIDGETS)
        assert ghe.counts() == {"/user": 1, "/user/repos": 1}
        assert requests.get(f"http://127.0.0.1:{ghe.port}/user", timeout=5).status_code == 404


def test_fake_answers_like_github(gh: FakeGitHub) -> None:
    s = requests.Session()
    try:
        r = s.get(f"{gh.url}/user", headers={"Authorization": "Bearer ghp_alice"}, timeout=5)
        assert r.json()["login"] == "alice"
        etag = r.headers["ETag"]
        r = s.get(
            f"{gh.url}/user",
            headers={"Authorization": "token ghp_alice", "If-None-Match": etag},
            timeout=5,
        )
        assert r.status_code == 304
        r = s.get(f"{gh.url}/user", headers={"Authorization": "token nope"}, timeout=5)
        assert (r.status_code, r.json()["message"]) == (401, "Bad credentials")
        r = s.get(f"{gh.url}/repos/ACME/Widgets", timeout=5)  # anonymous: private is hidden
        assert r.status_code == 404
        r = s.get(f"{gh.url}/repos/ACME/Widgets", headers={"Authorization": "token ghp_alice"}, timeout=5)
        assert r.json()["permissions"] == {
            "pull": True,
            "triage": True,
            "push": True,
            "maintain": False,
            "admin": False,
        }
        for i in range(5):
            gh.add_repo(f"acme/x{i}", perms={"bob": "pull"})
        r = s.get(f"{gh.url}/user/repos?per_page=2", headers={"Authorization": "token ghp_bob"}, timeout=5)
        assert [x["full_name"] for x in r.json()] == ["acme/x0", "acme/x1"]
        assert r.links["next"]["url"] == f"{gh.url}/user/repos?per_page=2&page=2"
        assert r.links["last"]["url"] == f"{gh.url}/user/repos?per_page=2&page=3"
        r = s.get(r.links["last"]["url"], headers={"Authorization": "token ghp_bob"}, timeout=5)
        assert [x["full_name"] for x in r.json()] == ["acme/x4"]
        assert "next" not in r.links
        gh.fail("ratelimit", reset_in=30)
        r = s.get(f"{gh.url}/user", headers={"Authorization": "token ghp_alice"}, timeout=5)
        assert (r.status_code, r.headers["X-RateLimit-Remaining"]) == (403, "0")
    finally:
        s.close()


def test_counter_is_thread_safe(gh: FakeGitHub) -> None:
    def hit() -> None:
        with requests.Session() as s:
            for _ in range(10):
                s.get(f"{gh.url}/user", headers={"Authorization": "token ghp_bob"}, timeout=5)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert gh.calls("/user") == 80
    assert gh.calls() == 80
    gh.reset_counts()
    assert gh.counts() == {}


def test_command_line_world() -> None:
    """``python -m tests.fakegithub`` builds its world from flags."""
    argv = [
        "--user", "alice:ghp_a:acme,other",
        "--user", "bob",
        "--repo", "acme/widgets",
        "--repo", "acme/docs:public",
        "--perm", "acme/widgets=alice:admin",
    ]  # fmt: skip
    with build(argv) as gh:
        h = {"Authorization": "token ghp_a"}
        orgs = requests.get(f"{gh.url}/user/orgs", headers=h, timeout=5).json()
        assert orgs == [{"login": "acme"}, {"login": "other"}]
        repo = requests.get(f"{gh.url}/repos/acme/widgets", headers=h, timeout=5).json()
        assert repo["permissions"]["admin"] is True
        assert requests.get(f"{gh.url}/repos/acme/docs", timeout=5).json()["private"] is False
        bob = {"Authorization": "token ghp_bob"}
        assert requests.get(f"{gh.url}/repos/acme/widgets", headers=bob, timeout=5).status_code == 404


def test_fixture_is_importable(fake_github: FakeGitHub) -> None:
    fake_github.add_user("zed")
    r = requests.get(f"{fake_github.url}/user", headers={"Authorization": "token ghp_zed"}, timeout=5)
    assert r.json()["login"] == "zed"
