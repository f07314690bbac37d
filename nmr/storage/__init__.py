"""Tarball storage: the ``TarballStorage`` interface, the key layout and the factory.

Keys are built only by ``tarball_key`` from an already validated package name and version,
plus the tarball's SHA-1, so a key names exactly one byte string and is never overwritten
(tarballs are immutable; a changed tarball, allowed only with
``settings.allow_previous_version``, lands under a new key). Layout, readable by an operator::

    @acme/widgets/widgets-1.2.0-3f2a9c1be07d.tgz
    lodash/lodash-4.17.21-679591c564c3.tgz        (forwarded packages cached in proxy mode)
"""

from __future__ import annotations

import abc
import typing as t

from nmr.errors import StorageNotFound, StorageUnavailable

if t.TYPE_CHECKING:
    from nmr.config import Config

__all__ = ["StorageNotFound", "StorageUnavailable", "TarballStorage", "make_storage", "tarball_key"]


def tarball_key(name: str, version: str, shasum: str) -> str:
    """The storage key of one tarball. ``name`` and ``version`` must already be validated."""
    base = name.rsplit("/", 1)[-1]
    return f"{name}/{base}-{version}-{shasum[:12]}.tgz"


class TarballStorage(abc.ABC):
    """Where tarball bytes live. Thread-safe; one instance serves every request thread.

    Every method takes a key from ``tarball_key``. A missing object is ``StorageNotFound``
    (a ``FileNotFoundError``); a backend that cannot be reached is ``StorageUnavailable``
    (a 503 with a clear message), never a bare exception.
    """

    @abc.abstractmethod
    def put(self, key: str, fileobj: t.BinaryIO, size: int) -> None:
        """Store ``size`` bytes read from ``fileobj`` under ``key``, atomically.

        Readers see either no object or the whole object. Storing a key that exists is a
        no-op (keys are content-addressed, so the bytes are the same).
        """

    @abc.abstractmethod
    def open(self, key: str) -> t.BinaryIO:
        """A readable, closeable stream of the object's bytes. Caller closes it."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The object's length in bytes."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abc.abstractmethod
    def list_keys(self) -> list[str]:
        """Every key stored, sorted (for operators, tests and consistency checks)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the backend can be read and written now."""

    def local_path(self, key: str) -> str | None:
        """A file-system path for zero-copy serving (sendfile), when the backend has one."""
        return None

    def redirect_url(self, key: str) -> str | None:
        """A URL the client may be redirected to for a download, when configured."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release clients and handles."""


def make_storage(config: Config) -> TarballStorage:
    """Build the backend named by ``storage.type``."""
    kind = config.get("storage.type")
    if kind == "local":
        from nmr.storage.local import LocalStorage

        return LocalStorage(config.get("storage.local.path"))
    if kind == "s3":
        from nmr.storage.s3 import S3Storage

        return S3Storage.from_config(config.get("storage.s3"))
    raise ValueError(f"unknown storage.type {kind!r}")
