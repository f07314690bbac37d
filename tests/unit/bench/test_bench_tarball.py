"""The seed data the benchmark publishes is what a real ``npm publish`` would send."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

import pytest

from bench.seed import build_dataset
from bench.tarball import escape_name, integrity, make_manifest, make_tarball, publish_body

REPO = "git+https://github.com/bench/packages.git"


def test_tarball_is_a_valid_tgz_with_matching_package_json():
    manifest = make_manifest("@bench/pkg-0001", "1.0.2", REPO)
    data = make_tarball(manifest, size=20 * 1024)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        inner = json.load(tar.extractfile("package/package.json"))
    assert "package/package.json" in names
    assert all(n.startswith("package/") for n in names)
    assert (inner["name"], inner["version"]) == ("@bench/pkg-0001", "1.0.2")
    assert 15 * 1024 < len(data) < 25 * 1024  # about the requested compressed size


def test_tarball_is_deterministic_and_distinct_per_version():
    a = make_manifest("@bench/a", "1.0.0", REPO)
    b = make_manifest("@bench/a", "1.0.1", REPO)
    assert make_tarball(a, 2048) == make_tarball(a, 2048)
    assert make_tarball(a, 2048) != make_tarball(b, 2048)


def test_integrity_is_npm_sha512():
    data = b"hello"
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert integrity(data) == f"sha512-{digest}"


def test_publish_body_matches_what_npm_sends():
    manifest = make_manifest("@bench/pkg-0001", "1.0.0", REPO)
    data = make_tarball(manifest, 2048)
    body = publish_body(manifest, data, "http://127.0.0.1:4873/")
    assert body["_id"] == body["name"] == "@bench/pkg-0001"
    assert body["dist-tags"] == {"latest": "1.0.0"}
    version = body["versions"]["1.0.0"]
    assert version["_id"] == "@bench/pkg-0001@1.0.0"
    attachment = body["_attachments"]["@bench/pkg-0001-1.0.0.tgz"]
    raw = base64.b64decode(attachment["data"])
    assert raw == data
    assert attachment["length"] == len(data)
    assert version["dist"]["integrity"] == integrity(data)
    assert version["dist"]["shasum"] == hashlib.sha1(data).hexdigest()


@pytest.mark.parametrize(("name", "escaped"), [("@bench/pkg", "@bench%2fpkg"), ("plain", "plain")])
def test_escape_name(name, escaped):
    assert escape_name(name) == escaped


def test_dataset_shape():
    ds = build_dataset(packages=3, versions=2, many_versions=5, tarball_size=1024)
    assert ds.names == ["@bench/pkg-0000", "@bench/pkg-0001", "@bench/pkg-0002"]
    assert [r.version for r in ds.packages["@bench/pkg-0000"]] == ["1.0.0", "1.0.1"]
    assert len({r.version for r in ds.many}) == 5
    assert ds.describe()["many_versions"] == 5
