"""Package metadata in LevelDB (plyvel). One process owns the database (LevelDB's rule).

Layout, one key family per prefix, every family written together in one atomic batch:

    h:<name>               head: rev, ETags, modified, binding (JSON)
    d:<name>               "<rev>\\n" + internal document (JSON)
    f:<name>, a:<name>     full and abbreviated packument bodies (precomputed)
    t:<name>\\0<version>    tarball entry (JSON)
    s:<name>               search summary (JSON)
"""

from __future__ import annotations

import json
import os
import threading
import typing as t
import weakref

import plyvel

from nmr.errors import Unavailable
from nmr.metadata import MetadataStore, PackageHead, PackageRecord, TarballEntry

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
            with self._db.write_batch(transaction=True, sync=True) as batch:
                for key in self._db.iterator(prefix=tprefix, include_value=False):
                    version = key[len(tprefix) :].decode()
                    if version not in record.tarballs:
                        batch.delete(key)
                for version, entry in record.tarballs.items():
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
            return True

    def summaries(self) -> Iterator[tuple[str, bytes]]:
        with self._db.snapshot() as snap:
            for key, value in snap.iterator(prefix=b"s:"):
                yield key[2:].decode(), value

    def check(self) -> None:
        try:
            self._db.get(b"h:")
        except Exception as exc:  # plyvel raises its own hierarchy; any failure means "not ready"
            raise Unavailable(f"metadata store {self.path} cannot be read: {exc}") from None

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
