"""Bad input: every case gets a 4xx JSON error and changes nothing on disk (SPEC §4)."""

from __future__ import annotations

import base64
import copy
import json
import os

import pytest

from tests.builders import escape, make_tarball, publish_body

NAME = "@acme/widgets"


@pytest.fixture
def seeded(client):
    assert client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0")).status_code == 201
    return client


def disk_state(app, tmp_path):
    """Every file under the data directory with its size, plus the stored package bodies."""
    files = {}
    for root, _dirs, names in os.walk(tmp_path / "storage"):
        for n in names:
            path = os.path.join(root, n)
            files[path] = os.path.getsize(path)
    services = app.extensions["nmr"]
    return files, services.metadata.document(NAME), list(services.metadata.summaries())


def mutate(body, fn):
    body = copy.deepcopy(body)
    fn(body)
    return body


def good(version="1.1.0"):
    return publish_body(NAME, version)


def _set_version_name(b):
    b["versions"]["1.1.0"]["name"] = "@acme/other"


def _bad_base64(b):
    b["_attachments"][f"{NAME}-1.1.0.tgz"]["data"] = "!!!not base64!!!"


def _wrong_length(b):
    b["_attachments"][f"{NAME}-1.1.0.tgz"]["length"] += 1


def _wrong_integrity(b):
    b["versions"]["1.1.0"]["dist"]["integrity"] = "sha512-" + base64.b64encode(b"x" * 64).decode()


def _wrong_shasum(b):
    b["versions"]["1.1.0"]["dist"]["shasum"] = "0" * 40


def _rename_attachment(b):
    b["_attachments"] = {"@acme/widgets-9.9.9.tgz": b["_attachments"][f"{NAME}-1.1.0.tgz"]}


def _extra_attachment(b):
    b["_attachments"]["evil.tgz"] = b["_attachments"][f"{NAME}-1.1.0.tgz"]


def _two_versions(b):
    b["versions"]["1.2.0"] = copy.deepcopy(b["versions"]["1.1.0"])


def _tag_elsewhere(b):
    b["dist-tags"] = {"latest": "1.0.0"}


def _bad_version(b):
    b["versions"] = {"1.1": {**b["versions"]["1.1.0"], "version": "1.1"}}


def _mismatched_tarball(b):
    data = make_tarball("@acme/other", "1.1.0")
    att = b["_attachments"][f"{NAME}-1.1.0.tgz"]
    att["data"], att["length"] = base64.b64encode(data).decode(), len(data)
    import hashlib

    b["versions"]["1.1.0"]["dist"] = {"shasum": hashlib.sha1(data).hexdigest()}


def _not_a_tarball(b):
    data = b"plain text, not gzip"
    att = b["_attachments"][f"{NAME}-1.1.0.tgz"]
    att["data"], att["length"] = base64.b64encode(data).decode(), len(data)
    import hashlib

    b["versions"]["1.1.0"]["dist"] = {"shasum": hashlib.sha1(data).hexdigest()}


BAD_BODIES = {
    "body name differs from URL": lambda b: b.update(name="@acme/other"),
    "_id differs from URL": lambda b: b.update(_id="@acme/other"),
    "version name differs": _set_version_name,
    "bad base64": _bad_base64,
    "wrong length": _wrong_length,
    "wrong integrity": _wrong_integrity,
    "wrong shasum": _wrong_shasum,
    "attachment name wrong": _rename_attachment,
    "extra attachment": _extra_attachment,
    "two versions": _two_versions,
    "dist-tag points elsewhere": _tag_elsewhere,
    "not semver": _bad_version,
    "tarball package.json disagrees": _mismatched_tarball,
    "attachment is not a tarball": _not_a_tarball,
    "bad access": lambda b: b.update(access="secret"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_publish_body_is_400_and_changes_nothing(seeded, app, tmp_path, case):
    before = disk_state(app, tmp_path)
    r = seeded.put(f"/{escape(NAME)}", json=mutate(good(), BAD_BODIES[case]))
    assert r.status_code == 400, (case, r.status_code, r.data[:200])
    assert isinstance(r.json["error"], str) and len(r.json["error"]) > 10
    assert disk_state(app, tmp_path) == before


@pytest.mark.parametrize(
    "path",
    [
        "/@acme%2f..%2f..%2fetc",
        "/@acme/..",
        "/%2e%2e%2fetc%2fpasswd",
        "/@ACME%2fWidgets",
        "/@acme%2fwid%2fgets",
        "/@acme/.hidden",
        "/@acme/_private",
        "/@acme/" + "a" * 215,
        "/@acme/wid gets",
    ],
)
def test_malformed_and_traversal_names_are_400(seeded, app, tmp_path, path):
    before = disk_state(app, tmp_path)
    for method in ("get", "put", "delete"):
        r = getattr(seeded, method)(path, json=good())
        assert r.status_code == 400, (method, path, r.status_code)
        assert "error" in r.json
    assert disk_state(app, tmp_path) == before


@pytest.mark.parametrize(
    "path",
    [
        "/@acme/widgets/-/..%2f..%2fdb.tgz",
        "/@acme/widgets/-/widgets-1.0.0.tgz%00",
        "/@acme/widgets/-/other-1.0.0.tgz",
    ],
)
def test_tarball_paths_never_reach_the_file_system(seeded, path):
    r = seeded.get(path)
    assert r.status_code in (400, 404) and "error" in r.json


def test_garbage_json_and_non_objects(seeded, app, tmp_path):
    before = disk_state(app, tmp_path)
    for data in (b"{not json", b"[1,2]", b"\xff\xfe", b"", b'"str"'):
        r = seeded.put(f"/{escape(NAME)}", data=data, content_type="application/json")
        assert r.status_code == 400, data
        assert r.json["error"]
    r = seeded.put(f"/{escape(NAME)}", json={"_id": NAME, "name": NAME})
    assert r.status_code == 400
    assert disk_state(app, tmp_path) == before


def test_oversize_body_is_413(make_config, tmp_path):
    from nmr.app import create_app

    app = create_app(make_config(settings={"max_body_size": "10kb"}))
    c = app.test_client()
    body = publish_body(NAME, "1.0.0", tarball=None, extra={"padding": "x" * 20_000})
    r = c.put(f"/{escape(NAME)}", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 413
    assert "limit" in r.json["error"]
    assert app.extensions["nmr"].storage.list_keys() == []
    assert app.extensions["nmr"].metadata.head(NAME) is None
    app.extensions["nmr"].close()


def test_publishing_outside_hosted_scopes_is_refused(make_config):
    from nmr.app import create_app

    app = create_app(make_config(registry={"scopes": ["@acme"]}))
    c = app.test_client()
    for name in ("left-pad", "@other/pkg"):
        r = c.put(f"/{escape(name)}", json=publish_body(name, "1.0.0"))
        assert r.status_code == 403 and "@acme" in r.json["error"], name
    assert c.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0")).status_code == 201
    app.extensions["nmr"].close()


def test_unknown_routes_are_json_404_and_405(client):
    r = client.get("/-/npm/v1/keys")
    assert r.status_code == 404 and r.json["error"]
    r = client.patch(f"/{escape(NAME)}")
    assert r.status_code == 405 and r.json["error"]


def test_bad_revision_and_unknown_package_writes(seeded):
    assert seeded.put(f"/{escape(NAME)}/-rev/abc", json={"versions": {}}).status_code == 400
    assert seeded.delete("/@acme%2fnothing/-rev/1-x").status_code == 404
    assert seeded.put("/-/package/@acme%2fnothing/dist-tags/beta", json="1.0.0").status_code == 404
    assert set(seeded.get(f"/{escape(NAME)}").json["versions"]) == {"1.0.0"}


def test_a_lone_surrogate_in_a_manifest_is_stored_escaped_not_a_500(client):
    """JSON may carry "\\ud800" (half a UTF-16 pair); it cannot be written as UTF-8, so it is
    kept escaped instead of failing the publish after its tarball was stored."""
    name = "@acme/surrogate"
    body = publish_body(name, "1.0.0")
    body["versions"]["1.0.0"]["description"] = "\ud800 half a pair"
    resp = client.put(f"/{escape(name)}", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 201, resp.get_json()
    packument = client.get(f"/{escape(name)}")
    assert packument.status_code == 200
    assert b'"\\ud800 half a pair"' in packument.data
    assert json.loads(packument.data)["versions"]["1.0.0"]["description"] == "\ud800 half a pair"
