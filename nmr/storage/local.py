"""Tarballs on the local file system: temp file + fsync + rename, paths through ``safe_join``."""

from __future__ import annotations

import os
import threading
import typing as t

from werkzeug.security import safe_join

from nmr.errors import StorageNotFound, StorageUnavailable
from nmr.storage import TarballStorage

_CHUNK = 1024 * 1024


class LocalStorage(TarballStorage):
    """Stores each key as a file below ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        path = safe_join(self.root, key)
        if path is None:  # never reached with keys from tarball_key; a guard, not a feature
            raise ValueError(f"unsafe storage key {key!r}")
        return path

    def put(self, key: str, fileobj: t.BinaryIO, size: int) -> None:
        path = self._path(key)
        if os.path.exists(path):
            return
        directory = os.path.dirname(path)
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            os.makedirs(directory, exist_ok=True)
            written = 0
            with open(tmp, "wb") as out:
                while chunk := fileobj.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if written != size:
                raise ValueError(f"storage put for {key!r}: got {written} bytes, expected {size}")
            os.replace(tmp, path)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to tarball storage: {exc.strerror}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def open(self, key: str) -> t.BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise StorageNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read tarball storage: {exc.strerror}") from None

    def size(self, key: str) -> int:
        try:
            return os.stat(self._path(key)).st_size
        except FileNotFoundError:
            raise StorageNotFound(key) from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        # Drop now-empty package directories so the tree mirrors what is stored.
        parent = os.path.dirname(path)
        while parent != self.root and parent.startswith(self.root):
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)

    def list_keys(self) -> list[str]:
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                if f.endswith(".tmp"):
                    continue
                keys.append(os.path.relpath(os.path.join(dirpath, f), self.root).replace(os.sep, "/"))
        return sorted(keys)

    def check(self) -> None:
        probe = os.path.join(self.root, f".probe-{os.getpid()}-{threading.get_ident()}")
        try:
            with open(probe, "wb") as fh:
                fh.write(b"ok")
            os.unlink(probe)
        except OSError as exc:
            raise StorageUnavailable(f"tarball storage {self.root} is not writable: {exc.strerror}") from None

    def local_path(self, key: str) -> str | None:
        return self._path(key)
