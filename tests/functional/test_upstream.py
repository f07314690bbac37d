"""Forwarding of non-hosted names through the Flask app to a stub upstream registry on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import logging
import threading

import pytest

from nmr.app import create_app
from tests.builders import escape, integrity_of, publish_body
from tests.stubregistry import StubRegistry

CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stub():
    registry = StubRegistry().start()
    registry.add("leftpad", "1.0.0")
    registry.add("@pub/thing", "2.0.0", dependencies={"leftpad": "^1.0.0"})
    # A hosted name the stub also knows: nmr must never ask for it.
    registry.add("@acme/secret", "9.9.9")
    yield registry
    registry.stop()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_app(make_config, stub, clock):
    apps = []

    def factory(server=None, **upstream):
        settings = {"url": stub.url, "mode": "proxy", "max_age": 120, "timeout": 2, **upstream}
        sections = {"upstream": settings, "registry": {"scopes": ["@acme"]}, "server": server or {}}
        application = create_app(make_config(**sections))
        if application.extensions["nmr"].upstream is not None:
            application.extensions["nmr"].upstream.clock = clock
        apps.append(application)
        return application

    yield factory
    for application in apps:
        application.extensions["nmr"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def tarball_keys(app):
    return app.extensions["nmr"].storage.list_keys()


# -- packuments -----------------------------------------------------------------------------


def test_first_fetch_rewrites_tarball_urls_then_serves_from_cache(client, stub):
    r = client.get("/leftpad")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    doc = r.json
    assert doc["versions"]["1.0.0"]["dist"]["tarball"] == "http://localhost/leftpad/-/leftpad-1.0.0.tgz"
    assert (
        doc["versions"]["1.0.0"]["dist"]["integrity"]
        == stub.packuments["leftpad"]["versions"]["1.0.0"]["dist"]["integrity"]
    )
    assert stub.url not in r.get_data(as_text=True)
    assert "Warning" not in r.headers
    assert stub.count("/leftpad") == 1

    corgi = client.get("/leftpad", headers={"Accept": CORGI})
    assert corgi.headers["Content-Type"] == "application/vnd.npm.install-v1+json"
    assert set(corgi.json) == {"name", "modified", "dist-tags", "versions"}
    assert corgi.json["modified"] == stub.packuments["leftpad"]["time"]["modified"]
    assert corgi.json["versions"]["1.0.0"]["dist"]["tarball"] == "http://localhost/leftpad/-/leftpad-1.0.0.tgz"
    assert "scripts" not in corgi.json["versions"]["1.0.0"]
    assert corgi.headers["ETag"] != r.headers["ETag"]
    assert client.get("/leftpad").json == doc
    assert stub.count("/leftpad") == 1, "within max_age both forms come from the one cached fetch"


def test_public_url_is_the_tarball_base(make_app, stub):
    app = make_app(server={"public_url": "https://npm.example.test/npm/"})
    doc = app.test_client().get("/npm/@pub%2fthing").json
    assert doc["versions"]["2.0.0"]["dist"]["tarball"] == "https://npm.example.test/npm/@pub/thing/-/thing-2.0.0.tgz"


@pytest.mark.parametrize("path", ["/@pub%2fthing", "/@pub%2Fthing", "/@pub/thing", "/%40pub%2fthing"])
def test_every_spelling_of_a_forwarded_scoped_name(client, stub, path):
    assert client.get(path).json["name"] == "@pub/thing"
    assert stub.paths() == ["/@pub/thing"]


def test_conditional_get_on_a_forwarded_packument(client):
    first = client.get("/leftpad")
    again = client.get("/leftpad", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]


def test_revalidation_with_304_counts_as_fresh(client, stub, clock):
    first = client.get("/leftpad")
    upstream_etag = stub.headers_of("/leftpad")
    clock.now += 121
    second = client.get("/leftpad")
    assert second.status_code == 200 and second.json == first.json and "Warning" not in second.headers
    sent = stub.headers_of("/leftpad")
    assert len(sent) == 2 and "If-None-Match" not in upstream_etag[0]
    assert sent[1]["If-None-Match"].startswith('"')
    client.get("/leftpad")
    assert stub.count("/leftpad") == 2, "a 304 makes the entry fresh again"


def test_revalidation_sees_new_versions(client, stub, clock):
    client.get("/leftpad")
    stub.add("leftpad", "1.1.0")
    assert "1.1.0" not in client.get("/leftpad").json["versions"]  # still fresh
    clock.now += 121
    doc = client.get("/leftpad").json
    assert doc["dist-tags"]["latest"] == "1.1.0" and "1.1.0" in doc["versions"]


@pytest.mark.parametrize("failure", ["status", "timeout", "down"])
def test_stale_copy_with_warning_when_upstream_fails(make_app, stub, clock, caplog, failure):
    app = make_app(timeout=1)
    client = app.test_client()
    fresh = client.get("/leftpad")
    clock.now += 500
    if failure == "status":
        stub.fail_status = 500
    elif failure == "timeout":
        stub.delay = 2
    else:
        stub.stop()
    caplog.set_level(logging.WARNING, logger="nmr.upstream")
    for _ in range(3):
        stale = client.get("/leftpad")
        assert stale.status_code == 200 and stale.json == fresh.json
        assert stale.headers["Warning"] == '110 - "Response is Stale"'
    corgi = client.get("/leftpad", headers={"Accept": CORGI})
    assert corgi.status_code == 200 and corgi.headers["Warning"].startswith("110")
    logged = [r for r in caplog.records if "leftpad" in r.getMessage()]
    assert len(logged) == 1, "upstream errors are logged once per name per interval"
    if failure != "down":
        assert stub.count("/leftpad") == 2, "after a failure, requests do not each wait for upstream again"
    stub.fail_status, stub.delay = None, 0


@pytest.mark.parametrize("failure", ["status", "down"])
def test_503_not_404_when_nothing_is_cached(client, stub, failure):
    if failure == "status":
        stub.fail_status = 502
    else:
        stub.stop()
    r = client.get("/leftpad")
    assert r.status_code == 503 and "Retry-After" in r.headers and "upstream" in r.json["error"]
    assert client.get("/leftpad/-/leftpad-1.0.0.tgz").status_code == 503
    assert client.get("/-/package/leftpad/dist-tags").status_code == 503


def test_upstream_404_is_a_404_and_is_cached(client, stub, clock):
    assert client.get("/no-such-package").status_code == 404
    assert client.get("/no-such-package").status_code == 404
    assert stub.count("/no-such-package") == 1
    clock.now += 121
    stub.add("no-such-package", "1.0.0")
    assert client.get("/no-such-package").status_code == 200


def test_cache_survives_a_restart(make_app, stub):
    first = make_app()
    body = first.test_client().get("/leftpad").json
    assert first.test_client().get("/leftpad/-/leftpad-1.0.0.tgz").status_code == 200
    first.extensions["nmr"].close()
    stub.stop()
    second = make_app().test_client()
    assert second.get("/leftpad").json == body
    assert second.get("/leftpad/-/leftpad-1.0.0.tgz").data == stub.tarballs["/leftpad/-/leftpad-1.0.0.tgz"]


def test_one_version_and_dist_tags_of_a_forwarded_name(client):
    assert client.get("/leftpad/1.0.0").json["version"] == "1.0.0"
    latest = client.get("/leftpad/latest").json
    assert latest["dist"]["tarball"] == "http://localhost/leftpad/-/leftpad-1.0.0.tgz"
    assert client.get("/leftpad/3.0.0").status_code == 404
    assert client.get("/-/package/leftpad/dist-tags").json == {"latest": "1.0.0"}
    assert client.get("/-/package/@pub%2fthing/dist-tags").json == {"latest": "2.0.0"}


def test_missing_version_refetches_at_once(client, stub, clock):
    client.get("/leftpad")
    stub.add("leftpad", "1.1.0")
    clock.now += 3
    # Fresh cache, but it lacks 1.1.0: a tarball or version request refetches instead of 404.
    r = client.get("/leftpad/-/leftpad-1.1.0.tgz")
    assert r.status_code == 200 and r.data == stub.tarballs["/leftpad/-/leftpad-1.1.0.tgz"]
    assert stub.count("/leftpad") == 2
    stub.add("leftpad", "1.2.0", tag="next")
    clock.now += 3
    assert client.get("/leftpad/next").json["version"] == "1.2.0"
    assert stub.count("/leftpad") == 3
    clock.now += 3
    assert client.get("/leftpad/9.9.9").status_code == 404
    assert stub.count("/leftpad") == 4
    # Within two seconds of a fetch, more misses do not go upstream again.
    for _ in range(5):
        assert client.get("/leftpad/-/leftpad-9.9.9.tgz").status_code == 404
    assert stub.count("/leftpad") == 4


# -- tarballs -------------------------------------------------------------------------------


def test_tarball_is_fetched_once_verified_stored_and_served_from_storage(app, client, stub):
    path = "/@pub/thing/-/thing-2.0.0.tgz"
    r = client.get(path)
    assert r.status_code == 200 and r.data == stub.tarballs[path]
    assert r.headers["Content-Type"] == "application/octet-stream"
    keys = tarball_keys(app)
    assert len(keys) == 1 and keys[0].startswith("@pub/thing/thing-2.0.0-")
    assert client.get("/@pub%2fthing/-/thing-2.0.0.tgz").data == stub.tarballs[path]
    assert stub.count(path) == 1
    stub.stop()
    assert client.get(path).data == stub.tarballs[path]


def test_tarball_with_wrong_integrity_is_refused_and_not_stored(app, client, stub):
    path = "/leftpad/-/leftpad-1.0.0.tgz"
    stub.corrupt.add(path)
    r = client.get(path)
    assert r.status_code == 502 and "integrity" in r.json["error"] and "stored nothing" in r.json["error"]
    assert tarball_keys(app) == []
    stub.corrupt.clear()
    assert client.get(path).data == stub.tarballs[path]
    assert len(tarball_keys(app)) == 1


def test_tarball_checked_against_shasum_when_there_is_no_integrity(app, client, stub):
    dist = stub.packuments["leftpad"]["versions"]["1.0.0"]["dist"]
    del dist["integrity"]
    path = "/leftpad/-/leftpad-1.0.0.tgz"
    stub.corrupt.add(path)
    assert client.get(path).status_code == 502
    stub.corrupt.clear()
    assert client.get(path).status_code == 200


def test_tarball_sent_with_a_transport_encoding_is_stored_as_published(app, client, stub):
    stub.gzip_transport = True
    path = "/leftpad/-/leftpad-1.0.0.tgz"
    assert client.get(path).data == stub.tarballs[path]
    (key,) = tarball_keys(app)
    with app.extensions["nmr"].storage.open(key) as fh:
        assert fh.read() == stub.tarballs[path]


def test_tarball_download_broken_off_is_503_and_not_stored(app, client, stub):
    path = "/leftpad/-/leftpad-1.0.0.tgz"
    stub.truncate.add(path)
    r = client.get(path)
    assert r.status_code == 503 and "try again" in r.json["error"]
    assert tarball_keys(app) == []
    stub.truncate.clear()
    assert client.get(path).data == stub.tarballs[path]


def test_tarball_of_unknown_version_or_bad_name_is_404(client):
    assert client.get("/leftpad/-/leftpad-7.0.0.tgz").status_code == 404
    assert client.get("/leftpad/-/other-1.0.0.tgz").status_code == 404


def test_concurrent_requests_for_one_name_cause_one_upstream_fetch(app, stub):
    stub.delay = 0.4
    results: list[tuple[int, int]] = []

    def fetch(path: str) -> None:
        r = app.test_client().get(path)
        results.append((r.status_code, len(r.data)))

    threads = [threading.Thread(target=fetch, args=("/leftpad",)) for _ in range(8)]
    threads += [threading.Thread(target=fetch, args=("/leftpad/-/leftpad-1.0.0.tgz",)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [status for status, _ in results] == [200] * 12
    assert stub.count("/leftpad") == 1
    assert stub.count("/leftpad/-/leftpad-1.0.0.tgz") == 1


# -- modes, hosted names, auth --------------------------------------------------------------


def test_redirect_mode_sends_reads_upstream(make_app, stub):
    client = make_app(mode="redirect").test_client()
    for path in ("/leftpad", "/@pub%2fthing", "/leftpad/-/leftpad-1.0.0.tgz", "/-/package/leftpad/dist-tags"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"] == stub.url + path
    assert client.get("/leftpad?write=true").headers["Location"] == stub.url + "/leftpad?write=true"
    assert client.get("/@acme%2fsecret").status_code == 404
    assert client.put("/leftpad", json=publish_body("leftpad", "1.0.0")).status_code == 403
    assert stub.paths() == []


def test_off_mode_answers_404(make_app, stub):
    client = make_app(mode="off").test_client()
    r = client.get("/leftpad")
    assert r.status_code == 404 and "forwarding" in r.json["error"]
    assert client.get("/-/package/leftpad/dist-tags").status_code == 404
    assert client.get("/leftpad/-/leftpad-1.0.0.tgz").status_code == 404
    assert stub.paths() == []


def test_hosted_names_never_reach_upstream(client, stub):
    assert client.get("/@acme%2fsecret").status_code == 404
    assert client.get("/@acme/secret").status_code == 404
    assert client.get("/@acme%2fsecret/9.9.9").status_code == 404
    assert client.get("/@acme/secret/-/secret-9.9.9.tgz").status_code == 404
    assert client.get("/-/package/@acme%2fsecret/dist-tags").status_code == 404
    assert client.put("/@acme%2fwidgets", json=publish_body("@acme/widgets", "1.0.0")).status_code == 201
    doc = client.get("/@acme%2fwidgets").json
    assert list(doc["versions"]) == ["1.0.0"]
    assert not any("acme" in p for p in stub.paths()), stub.paths()


def test_upstream_refuses_hosted_names_itself(app):
    from nmr.errors import NotFound

    with pytest.raises(NotFound):
        app.extensions["nmr"].upstream.packument("@acme/secret", abbreviated=False)


def test_publishing_a_forwarded_name_is_refused(client, stub):
    for name in ("leftpad", "@pub/thing"):
        r = client.put(f"/{escape(name)}", json=publish_body(name, "5.0.0"))
        assert r.status_code == 403 and "@acme" in r.json["error"]
    r = client.put("/-/package/leftpad/dist-tags/beta", json="1.0.0")
    assert r.status_code == 403
    assert stub.paths() == []


def test_client_credentials_never_go_upstream(client, stub):
    headers = {"Authorization": "Bearer ghp_secret_token", "Cookie": "session=1"}
    client.get("/leftpad", headers=headers)
    client.get("/leftpad/-/leftpad-1.0.0.tgz", headers=headers)
    client.post("/-/npm/v1/security/advisories/bulk", json={"leftpad": ["1.0.0"]}, headers=headers)
    sent = [h for _m, _p, h in stub.requests]
    assert len(sent) == 3
    for h in sent:
        assert "Authorization" not in h and "Cookie" not in h


# -- audit ----------------------------------------------------------------------------------


def test_bulk_audit_forwards_only_non_hosted_names(client, stub):
    stub.audit_answer = {"leftpad": [{"id": 1, "severity": "high", "vulnerable_versions": "<2"}]}
    body = {"leftpad": ["1.0.0"], "@pub/thing": ["2.0.0"], "@acme/secret": ["9.9.9"], "@acme/widgets": ["1.0.0"]}
    r = client.post(
        "/-/npm/v1/security/advisories/bulk",
        data=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json == stub.audit_answer
    assert stub.audit_bodies == [
        ("/-/npm/v1/security/advisories/bulk", {"leftpad": ["1.0.0"], "@pub/thing": ["2.0.0"]})
    ]


def test_bulk_audit_of_hosted_names_only_never_leaves(client, stub):
    r = client.post("/-/npm/v1/security/advisories/bulk", json={"@acme/secret": ["9.9.9"]})
    assert r.status_code == 200 and r.json == {}
    assert stub.audit_bodies == []


def test_quick_audit_tree_is_stripped_of_hosted_names(client, stub):
    stub.audit_answer = {"actions": [], "advisories": {}, "muted": [], "metadata": {"vulnerabilities": {}}}
    tree = {
        "name": "@acme/app",
        "version": "1.0.0",
        "requires": {"leftpad": "^1.0.0", "@acme/secret": "^9.0.0"},
        "dependencies": {
            "leftpad": {"version": "1.0.0"},
            "@acme/secret": {"version": "9.9.9", "requires": {"leftpad": "^1.0.0"}},
            "@pub/thing": {"version": "2.0.0", "dependencies": {"@acme/inner": {"version": "1.0.0"}}},
        },
    }
    r = client.post("/-/npm/v1/security/audits/quick", json=tree)
    assert r.status_code == 200 and r.json == stub.audit_answer
    (path, sent), *_ = stub.audit_bodies
    assert path == "/-/npm/v1/security/audits/quick"
    assert "acme" not in json.dumps(sent)
    assert set(sent["dependencies"]) == {"leftpad", "@pub/thing"}


def test_audit_answers_empty_when_upstream_fails(client, stub):
    stub.fail_status = 410
    assert client.post("/-/npm/v1/security/advisories/bulk", json={"leftpad": ["1.0.0"]}).json == {}
    r = client.post("/-/npm/v1/security/audits", json={"requires": {"leftpad": "1"}, "dependencies": {"leftpad": {}}})
    assert r.status_code == 200 and r.json["metadata"]["vulnerabilities"]["critical"] == 0
    stub.stop()
    assert client.post("/-/npm/v1/security/advisories/bulk", json={"leftpad": ["1.0.0"]}).json == {}


def test_audit_is_not_forwarded_in_redirect_mode(make_app, stub):
    client = make_app(mode="redirect").test_client()
    assert client.post("/-/npm/v1/security/advisories/bulk", json={"leftpad": ["1.0.0"]}).json == {}
    assert stub.audit_bodies == []


def test_integrity_helper_agrees_with_builders():
    import hashlib

    from nmr.upstream import check_integrity

    data = b"bytes"
    digests = {a: hashlib.new(a, data) for a in ("sha512", "sha384", "sha256", "sha1")}
    assert check_integrity(digests, integrity_of(data), "") is True
    assert check_integrity(digests, integrity_of(b"other"), hashlib.sha1(data).hexdigest()) is False
    assert check_integrity(digests, "", hashlib.sha1(data).hexdigest()) is True
    assert check_integrity(digests, "md5-abc", "") is None


def test_forwarded_reads_with_github_auth(make_config, stub):
    from tests.fakegithub import FakeGitHub

    with FakeGitHub() as gh:
        gh.add_user("alice", token="ghp_alice")
        gh.add_user("bob", token="ghp_bob")
        config = make_config(
            auth={"type": "github", "github": {"api_url": gh.url}},
            upstream={"url": stub.url, "mode": "proxy", "timeout": 2},
            registry={"scopes": ["@acme"]},
        )
        app = create_app(config)
        try:
            client = app.test_client()
            assert client.get("/leftpad").status_code == 200, "public packages need no token"
            assert client.get("/leftpad", headers={"Authorization": "Bearer ghp_alice"}).status_code == 200
            assert client.get("/leftpad", headers={"Authorization": "Bearer ghp_wrong"}).status_code == 401
            gh.fail("error")
            ok = client.get("/leftpad/-/leftpad-1.0.0.tgz", headers={"Authorization": "Bearer ghp_bob"})
            assert ok.status_code == 200, "a GitHub outage does not stop forwarded packages"
            hosted = client.get("/@acme%2fwidgets", headers={"Authorization": "Bearer ghp_bob"})
            assert hosted.status_code == 503
            assert all("Authorization" not in h for _m, _p, h in stub.requests)
        finally:
            app.extensions["nmr"].close()


def test_stale_copy_when_another_fetch_holds_the_lock_too_long(make_app, stub, clock):
    app = make_app(timeout=1)
    client = app.test_client()
    fresh = client.get("/leftpad").json
    clock.now += 500
    upstream = app.extensions["nmr"].upstream
    lock = upstream._lock_for("leftpad")
    with lock:  # a fetch that never ends: waiters give up after 2 * timeout + 1 s
        r = client.get("/leftpad")
        assert r.status_code == 200 and r.json == fresh and r.headers["Warning"].startswith("110")
        assert client.get("/@pub%2fthing").status_code == 200, "other names are not blocked"
    assert stub.count("/leftpad") == 1


KEYS = {"keys": [{"keyid": "SHA256:test", "keytype": "ecdsa-sha2-nistp256", "key": "MFk", "expires": None}]}


def test_signing_keys_come_from_upstream_and_outlive_an_outage(client, stub, clock):
    assert client.get("/-/npm/v1/keys").status_code == 404, "upstream without keys: nmr has none either"
    stub.extra["/-/npm/v1/keys"] = json.dumps(KEYS).encode()
    clock.now += 3601
    assert client.get("/-/npm/v1/keys").json == KEYS
    assert client.get("/-/npm/v1/keys").json == KEYS
    assert stub.count("/-/npm/v1/keys") == 2, "kept for an hour"
    clock.now += 3601
    stub.stop()
    assert client.get("/-/npm/v1/keys").json == KEYS


def test_signing_keys_without_upstream(make_app, stub):
    stub.stop()
    proxy = make_app()
    assert proxy.test_client().get("/-/npm/v1/keys").status_code == 503
    proxy.extensions["nmr"].close()
    assert make_app(mode="off").test_client().get("/-/npm/v1/keys").status_code == 404


def test_attestations_of_forwarded_versions_only(client, stub):
    body = {"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": {}}]}
    stub.extra["/-/npm/v1/attestations/@pub/thing@2.0.0"] = json.dumps(body).encode()
    stub.extra["/-/npm/v1/attestations/@acme/secret@9.9.9"] = json.dumps(body).encode()
    assert client.get("/-/npm/v1/attestations/@pub%2fthing@2.0.0").json == body
    assert client.get("/-/npm/v1/attestations/@pub/thing@2.0.0").json == body
    assert client.get("/-/npm/v1/attestations/leftpad@1.0.0").status_code == 404
    assert client.get("/-/npm/v1/attestations/@acme%2fsecret@9.9.9").status_code == 404
    assert client.get("/-/npm/v1/attestations/nonsense").status_code == 400
    assert not any("acme" in p for p in stub.paths())


def test_forwarded_packuments_keep_their_signatures(client, stub):
    dist = stub.packuments["leftpad"]["versions"]["1.0.0"]["dist"]
    dist["signatures"] = [{"keyid": "SHA256:test", "sig": "MEUC"}]
    got = client.get("/leftpad").json["versions"]["1.0.0"]["dist"]
    assert got["signatures"] == dist["signatures"] and got["integrity"] == dist["integrity"]


def test_tarball_on_another_host_is_never_fetched(app, client, stub):
    """A packument cannot make nmr request an address of its choosing (server-side fetch)."""
    import http.server
    import threading

    hits: list[str] = []

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    try:
        dist = stub.packuments["leftpad"]["versions"]["1.0.0"]["dist"]
        dist["tarball"] = f"http://127.0.0.1:{trap.server_address[1]}/internal/secret.tgz"
        r = client.get("/leftpad/-/leftpad-1.0.0.tgz")
        assert r.status_code == 502 and "another host" in r.json["error"]
        assert hits == []
        assert tarball_keys(app) == []
    finally:
        trap.shutdown()
        trap.server_close()
