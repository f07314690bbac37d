"""The npm API on hosted packages, through the Flask test client with LevelDB + local disk."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading

import pytest

from tests.builders import escape, integrity_of, make_tarball, publish_body

NAME = "@acme/widgets"
CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


def publish(client, name=NAME, version="1.0.0", **kw):
    return client.put(f"/{escape(name)}", json=publish_body(name, version, **kw))


def test_publish_then_full_and_abbreviated_packuments(client):
    r = publish(client)
    assert r.status_code == 201, r.json
    assert r.json["ok"] is True and r.json["success"] is True

    full = client.get(f"/{escape(NAME)}")
    assert full.status_code == 200
    assert full.headers["Content-Type"] == "application/json"
    doc = full.json
    assert doc["_id"] == NAME and doc["_rev"].startswith("1-")
    assert doc["dist-tags"] == {"latest": "1.0.0"}
    manifest = doc["versions"]["1.0.0"]
    data = make_tarball(NAME, "1.0.0", manifest={"description": f"{NAME} test package"})
    assert manifest["dist"]["integrity"] == integrity_of(data)
    assert manifest["dist"]["shasum"] == hashlib.sha1(data).hexdigest()
    assert manifest["dist"]["tarball"] == "http://localhost/@acme/widgets/-/widgets-1.0.0.tgz"
    assert manifest["dist"]["fileCount"] == 2
    assert manifest["_npmUser"]["name"] == "anonymous"
    assert "readme" not in manifest and doc["readme"] == f"# {NAME}\n"
    assert doc["description"] == f"{NAME} test package"
    assert "1.0.0" in doc["time"] and "created" in doc["time"] and "modified" in doc["time"]

    corgi = client.get(f"/{escape(NAME)}", headers={"Accept": CORGI})
    assert corgi.headers["Content-Type"] == "application/vnd.npm.install-v1+json"
    assert set(corgi.json) == {"name", "modified", "dist-tags", "versions"}
    assert set(corgi.json["versions"]["1.0.0"]) <= {"name", "version", "dist", "_npmUser"}
    assert corgi.headers["ETag"] != full.headers["ETag"]
    for response in (full, corgi):
        assert response.headers["Vary"] == "Accept, Accept-Encoding"
        assert "no-cache" in response.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/@acme%2fwidgets", "/@acme%2Fwidgets", "/@acme/widgets", "/%40acme%2fwidgets"])
def test_every_name_spelling_reaches_the_package(client, path):
    publish(client)
    assert client.get(path).json["name"] == NAME


def test_etag_304_and_if_modified_since(client):
    publish(client)
    first = client.get(f"/{escape(NAME)}")
    etag = first.headers["ETag"]
    again = client.get(f"/{escape(NAME)}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and again.data == b""
    weak = client.get(f"/{escape(NAME)}", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert weak.status_code == 304
    ims = client.get(f"/{escape(NAME)}", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert ims.status_code == 304
    publish(client, version="1.0.1")
    changed = client.get(f"/{escape(NAME)}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_gzip_when_accepted(client):
    publish(client, extra={"longDescription": "gears " * 400})
    r = client.get(f"/{escape(NAME)}", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(r.data))["name"] == NAME


def test_public_url_builds_tarball_urls(make_config):
    from nmr.app import create_app

    app = create_app(make_config(server={"public_url": "https://npm.example.test/prefix/"}))
    c = app.test_client()
    publish(c)
    url = c.get(f"/{escape(NAME)}").json["versions"]["1.0.0"]["dist"]["tarball"]
    assert url == "https://npm.example.test/prefix/@acme/widgets/-/widgets-1.0.0.tgz"
    # The proxy may keep the prefix in the path: both work.
    assert c.get("/prefix/@acme%2fwidgets").json["name"] == NAME
    app.extensions["nmr"].close()


@pytest.mark.parametrize(
    "path",
    [
        "/@acme/widgets/-/widgets-1.0.0.tgz",
        "/@acme%2fwidgets/-/widgets-1.0.0.tgz",
        "/@acme%2Fwidgets/-/widgets-1.0.0.tgz",
        "/@acme/widgets/-/@acme/widgets-1.0.0.tgz",
    ],
)
def test_tarball_download_in_all_encodings(client, path):
    publish(client)
    r = client.get(path)
    assert r.status_code == 200, r.json
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "immutable" in r.headers["Cache-Control"]
    assert integrity_of(r.data) == client.get(f"/{escape(NAME)}").json["versions"]["1.0.0"]["dist"]["integrity"]
    r.close()


def test_version_and_tag_lookup(client):
    publish(client)
    publish(client, version="2.0.0-beta.1", tag="beta")
    assert client.get(f"/{escape(NAME)}/1.0.0").json["version"] == "1.0.0"
    assert client.get(f"/{escape(NAME)}/latest").json["version"] == "1.0.0"
    assert client.get(f"/{escape(NAME)}/beta").json["version"] == "2.0.0-beta.1"
    missing = client.get(f"/{escape(NAME)}/9.9.9")
    assert missing.status_code == 404 and "version not found" in missing.json["error"]


def test_write_true_is_full_uncached_with_rev(client):
    publish(client)
    r = client.get(f"/{escape(NAME)}?write=true", headers={"Accept": CORGI})
    assert r.json["_rev"].startswith("1-") and "time" in r.json
    assert "no-store" in r.headers["Cache-Control"]


def test_unknown_hosted_package_is_plain_404(client):
    r = client.get("/@acme%2fnothing")
    assert r.status_code == 404 and r.json["error"]


def test_republish_identical_is_idempotent_and_different_is_409(client):
    assert publish(client).status_code == 201
    assert publish(client).status_code == 201  # the retry npm makes after a lost response
    other = publish(client, extra={"description": "changed"})
    assert other.status_code == 409
    assert "cannot publish over the previously published versions: 1.0.0" in other.json["error"]


def test_allow_previous_version_overwrites(make_config):
    from nmr.app import create_app

    app = create_app(make_config(settings={"allow_previous_version": True}))
    c = app.test_client()
    publish(c)
    storage = app.extensions["nmr"].storage
    first_keys = storage.list_keys()
    assert publish(c, extra={"description": "changed"}).status_code == 201
    assert c.get(f"/{escape(NAME)}").json["versions"]["1.0.0"]["description"] == "changed"
    keys = storage.list_keys()
    assert len(keys) == 1 and keys != first_keys  # new bytes, new key, old blob removed
    app.extensions["nmr"].close()


def test_dist_tags(client):
    publish(client)
    publish(client, version="1.1.0")
    base = f"/-/package/{escape(NAME)}/dist-tags"
    r = client.put(f"{base}/beta", json="1.0.0")
    assert r.status_code == 201 and r.json["ok"] is True
    assert client.get(base).json == {"latest": "1.1.0", "beta": "1.0.0"}
    assert client.put(f"{base}/beta", json="7.7.7").status_code == 404
    assert client.put(f"{base}/1.2", json="1.0.0").status_code == 400  # looks like a version
    assert client.put(f"{base}/beta", data=b"not json", content_type="application/json").status_code == 400
    assert client.delete(f"{base}/latest").status_code == 403
    assert client.delete(f"{base}/beta").json == {"ok": True}
    assert client.delete(f"{base}/beta").status_code == 404
    assert client.get(base).json == {"latest": "1.1.0"}


def test_deprecate_and_undeprecate_touch_only_deprecated(client):
    publish(client)
    publish(client, version="1.1.0")
    doc = client.get(f"/{escape(NAME)}?write=true").json
    doc["versions"]["1.0.0"]["deprecated"] = "use 1.1.0"
    doc["versions"]["1.0.0"]["dist"]["tarball"] = "http://evil/"  # ignored
    del doc["versions"]["1.1.0"]  # a missing version is never deleted by this PUT
    doc["versions"]["3.0.0"] = {"name": NAME, "version": "3.0.0"}  # never created
    r = client.put(f"/{escape(NAME)}", json=doc)
    assert r.status_code == 200
    now = client.get(f"/{escape(NAME)}").json
    assert now["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"
    assert set(now["versions"]) == {"1.0.0", "1.1.0"}
    assert now["versions"]["1.0.0"]["dist"]["tarball"].startswith("http://localhost/")
    assert client.get(f"/{escape(NAME)}", headers={"Accept": CORGI}).json["versions"]["1.0.0"]["deprecated"]
    doc = client.get(f"/{escape(NAME)}?write=true").json
    doc["versions"]["1.0.0"]["deprecated"] = ""
    client.put(f"/{escape(NAME)}", json=doc)
    assert "deprecated" not in client.get(f"/{escape(NAME)}").json["versions"]["1.0.0"]


def test_unpublish_one_version_leaves_tombstone(client, app):
    publish(client)
    publish(client, version="1.1.0")
    doc = client.get(f"/{escape(NAME)}?write=true").json
    rev = doc["_rev"]
    del doc["versions"]["1.1.0"]
    doc["dist-tags"] = {"latest": "1.0.0"}
    assert client.put(f"/{escape(NAME)}/-rev/{rev}", json=doc).status_code == 200
    new_rev = client.get(f"/{escape(NAME)}?write=true").json["_rev"]
    assert client.delete(f"/@acme/widgets/-/widgets-1.1.0.tgz/-rev/{new_rev}").status_code == 200
    now = client.get(f"/{escape(NAME)}").json
    assert set(now["versions"]) == {"1.0.0"} and now["dist-tags"] == {"latest": "1.0.0"}
    gone = client.get("/@acme/widgets/-/widgets-1.1.0.tgz")
    assert gone.status_code == 410 and "unpublished" in gone.json["error"]
    again = publish(client, version="1.1.0")
    assert again.status_code == 409 and "never be reused" in again.json["error"]
    assert len(app.extensions["nmr"].storage.list_keys()) == 1


def test_stale_revision_cannot_remove_a_newer_version(client):
    publish(client)
    stale = client.get(f"/{escape(NAME)}?write=true").json
    publish(client, version="1.1.0")  # lands after the client read the document
    stale["versions"] = {"1.0.0": stale["versions"]["1.0.0"]}
    r = client.put(f"/{escape(NAME)}/-rev/{stale['_rev']}", json=stale)
    assert r.status_code == 409
    assert set(client.get(f"/{escape(NAME)}").json["versions"]) == {"1.0.0", "1.1.0"}


def test_owner_change_is_not_an_unpublish(client):
    publish(client)
    doc = client.get(f"/{escape(NAME)}?write=true").json
    body = {"_id": NAME, "_rev": doc["_rev"], "maintainers": [{"name": "x", "email": "x@x"}]}
    r = client.put(f"/{escape(NAME)}/-rev/{doc['_rev']}", json=body)
    assert r.status_code == 403 and "GitHub" in r.json["error"]
    assert set(client.get(f"/{escape(NAME)}").json["versions"]) == {"1.0.0"}


def test_unpublish_whole_package(client, app):
    publish(client)
    publish(client, version="1.1.0")
    rev = client.get(f"/{escape(NAME)}?write=true").json["_rev"]
    assert client.delete(f"/{escape(NAME)}/-rev/{rev}").status_code == 200
    assert client.get(f"/{escape(NAME)}").status_code == 404
    assert client.get("/@acme/widgets/-/widgets-1.0.0.tgz").status_code == 410
    assert app.extensions["nmr"].storage.list_keys() == []
    assert publish(client, version="1.0.0").status_code == 409
    assert publish(client, version="2.0.0").status_code == 201
    assert client.get(f"/{escape(NAME)}").json["dist-tags"] == {"latest": "2.0.0"}


def test_search_star_whoami_ping_audit(client):
    publish(client, extra={"keywords": ["gears"]})
    publish(client, name="@acme/other")
    found = client.get("/-/v1/search?text=gears&size=20").json
    assert [o["package"]["name"] for o in found["objects"]] == [NAME]
    assert found["objects"][0]["package"]["maintainers"][0]["username"] == "anonymous"
    assert client.get("/-/v1/search?text=acme").json["total"] == 2
    assert client.get("/-/v1/search?text=nothing-like-this").json == {
        **client.get("/-/v1/search?text=nothing-like-this").json,
        "objects": [],
        "total": 0,
    }
    assert client.get("/-/v1/search?size=abc").status_code == 400
    doc = client.get(f"/{escape(NAME)}?write=true").json
    assert client.put(
        f"/{escape(NAME)}", json={"_id": NAME, "_rev": doc["_rev"], "users": {"anonymous": True}}
    ).json == {"ok": True}
    assert client.get(f"/{escape(NAME)}").json["users"] == {"anonymous": True}
    assert client.get("/-/whoami", headers={"Authorization": "Bearer x"}).json == {"username": "anonymous"}
    assert client.get("/-/ping").json == {}
    bulk = client.post(
        "/-/npm/v1/security/advisories/bulk",
        data=gzip.compress(json.dumps({NAME: ["1.0.0"]}).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert bulk.status_code == 200 and bulk.json == {}
    quick = client.post("/-/npm/v1/security/audits/quick", json={"name": "x"})
    assert quick.json["metadata"]["vulnerabilities"]["critical"] == 0


def test_login_logout_and_web_login_fallback(client):
    r = client.put("/-/user/org.couchdb.user:alice", json={"name": "alice", "password": "pw", "type": "user"})
    assert r.status_code == 201 and r.json["ok"] is True and r.json["token"]
    assert client.delete("/-/user/token/abc").json == {"ok": True}
    assert client.post("/-/v1/login", json={}).status_code == 404


def test_concurrent_publishes_of_one_package_all_land(app):
    errors: list[object] = []

    def worker(i: int) -> None:
        c = app.test_client()
        r = c.put(f"/{escape(NAME)}", json=publish_body(NAME, f"1.0.{i}"))
        if r.status_code != 201:
            errors.append(r.json)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    doc = app.test_client().get(f"/{escape(NAME)}").json
    assert len(doc["versions"]) == 20
    assert doc["_rev"].startswith("20-")
