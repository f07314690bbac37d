"""A failure at any point of a write leaves the old or the new state, never a dangling tarball."""

from __future__ import annotations

import pytest

from nmr.errors import StorageUnavailable
from tests.builders import escape, publish_body

NAME = "@acme/widgets"


def assert_consistent(app):
    """Every version the metadata lists has its tarball in storage, with the listed size."""
    services = app.extensions["nmr"]
    found = services.metadata.document(NAME)
    if found is None:
        return
    import json

    doc = json.loads(found[1])
    for version in doc["versions"]:
        entry = services.metadata.tarball(NAME, version)
        assert entry is not None and not entry.gone
        assert services.storage.exists(entry.key), version
        assert services.storage.size(entry.key) == entry.size


def test_storage_failure_during_publish_writes_no_metadata(app, client, monkeypatch):
    assert client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0")).status_code == 201
    storage = app.extensions["nmr"].storage

    def broken_put(*_a, **_k):
        raise StorageUnavailable("disk on fire")

    monkeypatch.setattr(storage, "put", broken_put)
    r = client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.1.0"))
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "disk on fire" in r.json["error"]
    assert set(client.get(f"/{escape(NAME)}").json["versions"]) == {"1.0.0"}
    assert_consistent(app)


def test_metadata_failure_after_the_tarball_leaves_the_old_state(app, client, monkeypatch):
    assert client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0")).status_code == 201
    metadata = app.extensions["nmr"].metadata

    def crash(*_a, **_k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(metadata, "compare_and_swap", crash)
    r = client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.1.0"))
    assert r.status_code == 500 and r.json == {"error": "internal error; the registry logged the details"}
    monkeypatch.undo()
    assert set(client.get(f"/{escape(NAME)}").json["versions"]) == {"1.0.0"}
    assert_consistent(app)
    # The orphan blob does not block the retry.
    assert client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.1.0")).status_code == 201
    assert_consistent(app)


@pytest.mark.parametrize("fail_delete", [True, False])
def test_unpublish_removes_metadata_before_the_tarball(app, client, monkeypatch, fail_delete):
    client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0"))
    client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.1.0"))
    storage = app.extensions["nmr"].storage
    if fail_delete:

        def broken_delete(_key):
            raise StorageUnavailable("storage gone")

        monkeypatch.setattr(storage, "delete", broken_delete)
    rev = client.get(f"/{escape(NAME)}?write=true").json["_rev"]
    r = client.delete(f"/{escape(NAME)}/-rev/{rev}")
    assert r.status_code == 200  # the versions are gone; a leftover blob is only an orphan
    assert client.get(f"/{escape(NAME)}").status_code == 404
    assert len(storage.list_keys()) == (2 if fail_delete else 0)
