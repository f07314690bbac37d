"""Package metadata: the ``MetadataStore`` interface, ``PackageRecord`` and the factory.

A package is stored as one ``PackageRecord``: the internal document (source of truth for
writes) plus everything the read path needs precomputed at write time (response bodies,
ETags, the tarball index and the search summary), so a read is a lookup, never a rebuild.

Writes are compare-and-swap on a per-package integer revision: ``compare_and_swap`` stores a
record only if the stored revision is still the one the writer read. That is all a shared
backend (S3 conditional writes, a SQL row version) has to offer to replace LevelDB.
"""

from __future__ import annotations

import abc
import dataclasses
import typing as t

from nmr.metrics import NULL_METRICS, Metrics

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from nmr.config import Config


@dataclasses.dataclass(frozen=True)
class TarballEntry:
    """Where one version's tarball is, or that it was unpublished (``key`` is empty then)."""

    key: str
    size: int = 0
    integrity: str = ""
    gone: bool = False


@dataclasses.dataclass(frozen=True)
class PackageHead:
    """The small part of a record every read needs: revision, validators, binding."""

    rev: int
    etag_full: str
    etag_abbreviated: str
    modified: str  # ISO-8601, the package's last change
    repository: dict[str, str] | None  # Repository.to_json() of the binding, if any
    exists: bool = True  # False for a fully unpublished package kept as a tombstone


@dataclasses.dataclass(frozen=True)
class PackageRecord:
    """Everything stored for one package, written as a unit."""

    name: str
    head: PackageHead
    document: bytes  # the internal document (JSON)
    full: bytes  # full packument body, tarball URLs as templates (see nmr.packument)
    abbreviated: bytes  # abbreviated packument body, same templating
    tarballs: dict[str, TarballEntry]  # version -> entry, every version ever published
    summary: bytes | None  # search summary (JSON), None when nothing is published


@dataclasses.dataclass(frozen=True)
class UpstreamHead:
    """What nmr knows of a forwarded package's upstream packument, without its bodies."""

    fetched_at: float  # time.time() of the last answer from upstream (a 200, 304 or 404)
    found: bool  # False: upstream answered 404 (a negative entry, no bodies)
    validator: str = ""  # upstream's ETag, sent back as If-None-Match
    etag_full: str = ""  # ETags of the stored bodies (templated, see nmr.packument)
    etag_abbreviated: str = ""
    modified: str = ""  # ISO-8601 ``time.modified`` of the packument


@dataclasses.dataclass(frozen=True)
class UpstreamRecord:
    """A cached upstream packument, written as a unit (see ``nmr.upstream``)."""

    name: str
    head: UpstreamHead
    full: bytes  # full packument, tarball URLs templated to nmr's base
    abbreviated: bytes  # derived from the full one
    index: bytes  # JSON {"dist-tags": {...}, "versions": {version: {url, integrity, shasum}}}


#: Parts of an ``UpstreamRecord`` that ``MetadataStore.upstream_body`` returns.
UPSTREAM_PARTS = ("full", "abbreviated", "index")


class MetadataStore(abc.ABC):
    """Per-package records with compare-and-swap. Thread-safe."""

    #: Where the backend reports counters; ``create_app`` sets the app's registry (see ``nmr.metrics``).
    metrics: Metrics = NULL_METRICS

    @abc.abstractmethod
    def head(self, name: str) -> PackageHead | None:
        """The head of ``name``, or None if nothing was ever stored."""

    @abc.abstractmethod
    def body(self, name: str, abbreviated: bool) -> bytes | None:
        """A stored packument body (full or abbreviated)."""

    @abc.abstractmethod
    def document(self, name: str) -> tuple[int, bytes] | None:
        """``(rev, internal document)`` of ``name``, for read-modify-write."""

    @abc.abstractmethod
    def tarball(self, name: str, version: str) -> TarballEntry | None:
        """The tarball entry of one version."""

    @abc.abstractmethod
    def compare_and_swap(self, record: PackageRecord, expected_rev: int | None) -> bool:
        """Store ``record`` if the stored revision is ``expected_rev`` (None: nothing stored).

        Returns False, changing nothing, when another writer got there first. All parts of the
        record become visible together.
        """

    # -- the cache of forwarded (upstream) packuments: a namespace apart from hosted packages --

    @abc.abstractmethod
    def upstream_head(self, name: str) -> UpstreamHead | None:
        """The cache head of forwarded ``name``, or None if it was never fetched."""

    @abc.abstractmethod
    def upstream_body(self, name: str, part: str) -> tuple[UpstreamHead, bytes] | None:
        """The head and one part (``UPSTREAM_PARTS``) of the cached entry, read consistently."""

    @abc.abstractmethod
    def put_upstream(self, record: UpstreamRecord) -> None:
        """Replace the cached entry of ``record.name``; all parts become visible together."""

    @abc.abstractmethod
    def touch_upstream(self, name: str, fetched_at: float) -> None:
        """Mark the cached entry revalidated at ``fetched_at`` (upstream answered 304)."""

    @abc.abstractmethod
    def summaries(self) -> Iterator[tuple[str, bytes]]:
        """``(name, summary)`` of every package with a summary, from a consistent snapshot."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ``Unavailable`` unless the store can be read now."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release the store."""


def make_metadata_store(config: Config) -> MetadataStore:
    """Build the backend named by ``metadata.type``."""
    kind = config.get("metadata.type")
    if kind == "leveldb":
        from nmr.metadata.leveldb import LevelDBMetadataStore

        return LevelDBMetadataStore(config.get("metadata.leveldb.path"))
    raise ValueError(f"unknown metadata.type {kind!r}")
