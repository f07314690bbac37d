"""Package metadata in LevelDB (plyvel). One process owns the database (LevelDB's rule).

Layout, one key family per prefix, every family written together in one atomic batch:

    h:<name>               head: rev, ETags, modified, binding (JSON)
    d:<name>               "<rev>\\n" + internal document (JSON)
    f:<name>, a:<name>     full and abbreviated packument bodies (precomputed)
    t:<name>\\0<version>    tarball entry (JSON)
    s:<name>               search summary (JSON)

Forwarded packages cached from upstream (``nmr.upstream``) live apart, under ``u``, so a
hosted name and a forwarded one can never read each other's data:

    uh:<name>              cache head: fetched_at, upstream ETag, our ETags (JSON)
    uf:<name>, ua:<name>   full and abbreviated packument bodies (templated)
    ui:<name>              index: dist-tags and version -> upstream tarball URL, integrity, shasum
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import typing as t
import weakref

import plyvel
from cachetools import LRUCache

from nmr.errors import Unavailable
from nmr.metadata import MetadataStore, PackageHead, PackageRecord, TarballEntry, UpstreamHead, UpstreamRecord

if t.TYPE_CHECKING:
    from collections.abc import Iterator


class MetadataLocked(RuntimeError):
    """The database is open in another process."""


class LevelDBMetadataStore(MetadataStore):
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        os.makedirs(self.path, exist_ok=True)
        try:
            self._db = plyvel.DB(self.path, create_if_missing=True)
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise MetadataLocked(
                    f"metadata.leveldb.path {self.path} is in use by another process; LevelDB allows "
                    "one process (run gunicorn with one worker and threads, as 'nmr serve' does)"
                ) from None
            raise
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()
        # Tarball entries as last written, per package (guarded by _locks_guard).
        self._written: LRUCache[str, dict[str, TarballEntry]] = LRUCache(maxsize=2048)

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = threading.Lock()
                self._locks[name] = lock
            return lock

    @staticmethod
    def _k(prefix: bytes, name: str) -> bytes:
        return prefix + name.encode()

    def head(self, name: str) -> PackageHead | None:
        raw = self._db.get(self._k(b"h:", name))
        if raw is None:
            return None
        return PackageHead(**json.loads(raw))

    def body(self, name: str, abbreviated: bool) -> bytes | None:
        value: bytes | None = self._db.get(self._k(b"a:" if abbreviated else b"f:", name))
        return value

    def document(self, name: str) -> tuple[int, bytes] | None:
        raw = self._db.get(self._k(b"d:", name))
        if raw is None:
            return None
        rev, _, doc = raw.partition(b"\n")
        return int(rev), doc

    def tarball(self, name: str, version: str) -> TarballEntry | None:
        raw = self._db.get(self._k(b"t:", f"{name}\0{version}"))
        return TarballEntry(**json.loads(raw)) if raw is not None else None

    def compare_and_swap(self, record: PackageRecord, expected_rev: int | None) -> bool:
        name = record.name
        with self._lock_for(name):
            current = self.head(name)
            current_rev = current.rev if current else None
            if current_rev != expected_rev:
                return False
            tprefix = self._k(b"t:", f"{name}\0")
            # This process is the only writer, so the entries it wrote last time are what is
            # stored: write only the ones that changed (a publish adds one), not all of them.
            with self._locks_guard:  # cachetools caches are not thread-safe
                previous = self._written.get(name)
            with self._db.write_batch(transaction=True, sync=True) as batch:
                if previous is None:
                    for key in self._db.iterator(prefix=tprefix, include_value=False):
                        if key[len(tprefix) :].decode() not in record.tarballs:
                            batch.delete(key)
                else:
                    for version in previous.keys() - record.tarballs.keys():
                        batch.delete(tprefix + version.encode())
                for version, entry in record.tarballs.items():
                    if previous is not None and previous.get(version) == entry:
                        continue
                    value = json.dumps(entry.__dict__, separators=(",", ":")).encode()
                    batch.put(tprefix + version.encode(), value)
                batch.put(self._k(b"d:", name), b"%d\n" % record.head.rev + record.document)
                batch.put(self._k(b"f:", name), record.full)
                batch.put(self._k(b"a:", name), record.abbreviated)
                if record.summary is None:
                    batch.delete(self._k(b"s:", name))
                else:
                    batch.put(self._k(b"s:", name), record.summary)
                # The head goes last in the batch; the batch is atomic, so order is for readers only.
                batch.put(self._k(b"h:", name), json.dumps(record.head.__dict__).encode())
            with self._locks_guard:
                self._written[name] = dict(record.tarballs)
            return True

    _UPSTREAM_PREFIX: t.ClassVar[dict[str, bytes]] = {"full": b"uf:", "abbreviated": b"ua:", "index": b"ui:"}

    def upstream_head(self, name: str) -> UpstreamHead | None:
        raw = self._db.get(self._k(b"uh:", name))
        return UpstreamHead(**json.loads(raw)) if raw is not None else None

    def upstream_body(self, name: str, part: str) -> tuple[UpstreamHead, bytes] | None:
        with self._db.snapshot() as snap:
            raw = snap.get(self._k(b"uh:", name))
            body = snap.get(self._k(self._UPSTREAM_PREFIX[part], name))
        if raw is None or body is None:
            return None
        return UpstreamHead(**json.loads(raw)), body

    def put_upstream(self, record: UpstreamRecord) -> None:
        name = record.name
        with self._lock_for("\0upstream\0" + name), self._db.write_batch(transaction=True) as batch:
            for part, body in (("full", record.full), ("abbreviated", record.abbreviated), ("index", record.index)):
                batch.put(self._k(self._UPSTREAM_PREFIX[part], name), body)
            batch.put(self._k(b"uh:", name), json.dumps(record.head.__dict__).encode())

    def touch_upstream(self, name: str, fetched_at: float) -> None:
        with self._lock_for("\0upstream\0" + name):
            head = self.upstream_head(name)
            if head is None:
                return
            fresh = dataclasses.replace(head, fetched_at=max(head.fetched_at, fetched_at))
            self._db.put(self._k(b"uh:", name), json.dumps(fresh.__dict__).encode())

    def summaries(self) -> Iterator[tuple[str, bytes]]:
        with self._db.snapshot() as snap:
            for key, value in snap.iterator(prefix=b"s:"):
                yield key[2:].decode(), value

    def check(self) -> None:
        try:
            self._db.get(b"h:")
        except Exception as exc:  # plyvel raises its own hierarchy; any failure means "not ready"
            raise Unavailable(f"metadata store {self.path} cannot be read: {exc}") from None
        # An open LevelDB keeps answering from memory and open files after its directory was
        # removed or replaced, and would lose every later write: that is not ready either.
        if not os.path.isfile(os.path.join(self.path, "CURRENT")):
            raise Unavailable(f"metadata store {self.path} is gone from disk (no CURRENT file); restart nmr")

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
