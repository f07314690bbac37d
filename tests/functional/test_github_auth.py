"""The npm API with auth.type = "github" against FakeGitHub: SPEC §3 answers end to end.

Needs the registry core (nmr.app, tests.builders); skipped where they are absent.
"""

from __future__ import annotations

import base64
import typing as t

import pytest

from nmr.config import Config
from tests.fakegithub import FakeGitHub

pytest.importorskip("nmr.app")
builders = pytest.importorskip("tests.builders")

PKG = "@acme/widgets"


@pytest.fixture
def gh() -> t.Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("alice", token="ghp_alice")  # admin
        fake.add_user("bob", token="ghp_bob")  # push
        fake.add_user("carol", token="ghp_carol")  # pull
        fake.add_user("dave", token="ghp_dave")  # nothing
        fake.add_repo("acme/widgets", private=True, perms={"alice": "admin", "bob": "push", "carol": "pull"})
        fake.add_repo("acme/gadgets", private=True, perms={"alice": "admin"})
        fake.add_repo("evil/widgets", private=False, perms={"dave": "admin"})
        yield fake


@pytest.fixture
def gh_client(gh: FakeGitHub, make_config: t.Callable[..., Config]) -> t.Iterator[t.Any]:
    from nmr.app import create_app

    config = make_config(auth={"type": "github", "github": {"api_url": gh.url}})
    app = create_app(config)
    try:
        yield app.test_client()
    finally:
        app.extensions["nmr"].close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put(client: t.Any, token: str | None, version: str = "1.0.0", repository: t.Any = "github:acme/widgets") -> t.Any:
    body = builders.publish_body(PKG, version, repository=repository)
    headers = bearer(token) if token else {}
    return client.put(f"/{builders.escape(PKG)}", json=body, headers=headers)


def test_publish_and_read_follow_repository_permissions(gh_client: t.Any, gh: FakeGitHub) -> None:
    assert put(gh_client, None).status_code == 401
    r = put(gh_client, "ghp_carol")
    assert r.status_code == 403
    assert "acme/widgets" in r.json["error"]
    assert put(gh_client, "ghp_dave").status_code == 404
    assert put(gh_client, "ghp_bob").status_code == 201
    url = f"/{builders.escape(PKG)}"
    assert gh_client.get(url).status_code == 401
    assert gh_client.get(url, headers=bearer("ghp_carol")).status_code == 200
    assert gh_client.get(url, headers=bearer("ghp_dave")).status_code == 404
    assert gh_client.get(url, headers=bearer("ghp_wrong")).status_code == 401
    basic = base64.b64encode(b"carol:ghp_carol").decode()
    assert gh_client.get(url, headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_publish_needs_a_repository_matching_the_scope(gh_client: t.Any) -> None:
    r = put(gh_client, "ghp_alice", repository=None)
    assert r.status_code == 400
    assert '"repository"' in r.json["error"]
    r = put(gh_client, "ghp_dave", repository="github:evil/widgets")
    assert r.status_code == 403
    assert "@acme" in r.json["error"]


def test_moving_a_package_needs_admin_on_the_bound_repository(gh_client: t.Any) -> None:
    assert put(gh_client, "ghp_bob").status_code == 201
    assert put(gh_client, "ghp_bob", "1.1.0", repository="github:acme/gadgets").status_code in (403, 404)
    assert put(gh_client, "ghp_alice", "1.1.0", repository="github:acme/gadgets").status_code == 201


def test_github_down_is_503_not_401(gh_client: t.Any, gh: FakeGitHub) -> None:
    gh.fail("error")
    r = gh_client.get(f"/{builders.escape(PKG)}", headers=bearer("ghp_carol"))
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) >= 1


def test_whoami_and_legacy_login(gh_client: t.Any) -> None:
    r = gh_client.get("/-/whoami", headers=bearer("ghp_bob"))
    assert (r.status_code, r.json["username"]) == (200, "bob")
    r = gh_client.put(
        "/-/user/org.couchdb.user:bob",
        json={"_id": "org.couchdb.user:bob", "name": "bob", "password": "ghp_bob", "type": "user"},
    )
    assert r.status_code == 201
    assert r.json["token"] == "ghp_bob"
    r = gh_client.put(
        "/-/user/org.couchdb.user:alice",
        json={"_id": "org.couchdb.user:alice", "name": "alice", "password": "ghp_bob", "type": "user"},
    )
    assert r.status_code == 401


def test_search_lists_only_readable_packages(gh_client: t.Any, gh: FakeGitHub) -> None:
    assert put(gh_client, "ghp_bob").status_code == 201

    def names(token: str) -> list[str]:
        r = gh_client.get("/-/v1/search?text=widgets", headers=bearer(token))
        return [o["package"]["name"] for o in r.json["objects"]]

    assert names("ghp_carol") == [PKG]
    assert names("ghp_dave") == []


def test_cold_install_costs_one_list_not_one_call_per_package(gh_client: t.Any, gh: FakeGitHub) -> None:
    for i in range(20):
        name = f"@acme/p{i}"
        body = builders.publish_body(name, "1.0.0", repository="github:acme/widgets")
        assert gh_client.put(f"/{builders.escape(name)}", json=body, headers=bearer("ghp_bob")).status_code == 201
    gh.reset_counts()
    for i in range(20):
        assert gh_client.get(f"/{builders.escape(f'@acme/p{i}')}", headers=bearer("ghp_carol")).status_code == 200
    assert gh.counts() == {"/user": 1, "/user/repos": 1}


def test_callers_without_push_are_refused_before_the_tarball_is_read(
    gh_client: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert put(gh_client, "ghp_bob").status_code == 201
    import nmr.service

    inspected: list[str] = []
    real = nmr.service.validate_publish
    monkeypatch.setattr(nmr.service, "validate_publish", lambda name, body: inspected.append(name) or real(name, body))
    assert put(gh_client, "ghp_dave", "1.1.0").status_code == 404  # no access to acme/widgets
    assert put(gh_client, "ghp_carol", "1.1.0").status_code == 403  # pull only
    assert inspected == []
    assert put(gh_client, "ghp_bob", "1.1.0").status_code == 201
    assert inspected == [PKG]
