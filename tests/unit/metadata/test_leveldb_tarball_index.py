"""The tarball index is written incrementally but always ends up equal to the record's."""

from __future__ import annotations

import dataclasses

from nmr import packument as pm
from nmr.metadata import TarballEntry
from nmr.metadata.leveldb import LevelDBMetadataStore

NAME = "@acme/w"


def record(rev, versions, gone=()):
    doc = pm.new_document(NAME)
    for v in versions:
        doc["versions"][v] = {"name": NAME, "version": v, "dist": {}}
        doc["nmr"]["tarballs"][v] = {"key": f"k-{v}", "size": 1, "integrity": "sha512-x"}
    for v in gone:
        doc["nmr"]["tarballs"][v] = {"key": "", "size": 0, "integrity": "", "gone": True}
    doc["dist-tags"]["latest"] = versions[-1]
    return pm.build_record(doc, rev)


def index(store, versions):
    return {v: store.tarball(NAME, v) for v in versions}


def test_incremental_and_after_restart(tmp_path):
    store = LevelDBMetadataStore(str(tmp_path / "db"))
    assert store.compare_and_swap(record(1, ["1.0.0", "1.0.1"]), None)
    assert store.compare_and_swap(record(2, ["1.0.0", "1.0.1", "1.0.2"]), 1)
    assert store.compare_and_swap(record(3, ["1.0.0", "1.0.2"], gone=["1.0.1"]), 2)
    assert index(store, ["1.0.0", "1.0.1", "1.0.2"]) == {
        "1.0.0": TarballEntry("k-1.0.0", 1, "sha512-x"),
        "1.0.1": TarballEntry("", 0, "", gone=True),
        "1.0.2": TarballEntry("k-1.0.2", 1, "sha512-x"),
    }
    store.close()
    # A new process knows nothing of the last write: it rewrites the index whole.
    store = LevelDBMetadataStore(str(tmp_path / "db"))
    rec = record(4, ["1.0.2"])
    rec = dataclasses.replace(rec, tarballs={"1.0.2": rec.tarballs["1.0.2"]})
    assert store.compare_and_swap(rec, 3)
    assert index(store, ["1.0.0", "1.0.1", "1.0.2"]) == {
        "1.0.0": None,
        "1.0.1": None,
        "1.0.2": TarballEntry("k-1.0.2", 1, "sha512-x"),
    }
    # A failed compare-and-swap changes nothing, including the remembered index.
    assert not store.compare_and_swap(record(9, ["1.0.0"]), 1)
    assert store.compare_and_swap(record(5, ["1.0.2", "1.0.3"]), 4)
    assert store.tarball(NAME, "1.0.3") == TarballEntry("k-1.0.3", 1, "sha512-x")
    assert store.tarball(NAME, "1.0.0") is None
    store.close()
