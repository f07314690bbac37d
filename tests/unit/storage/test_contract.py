"""The ``TarballStorage`` contract, run against every backend (``storage`` fixture)."""

from __future__ import annotations

import hashlib
import io
import threading
import typing as t

import pytest

from nmr.errors import StorageNotFound
from nmr.storage import tarball_key
from tests.unit.storage.streams import (
    FailingStream,
    GeneratedStream,
    MustNotRead,
    SourceBroke,
    sha256_of_stream,
)

if t.TYPE_CHECKING:
    from nmr.storage import TarballStorage

SHA = hashlib.sha1(b"widgets").hexdigest()
SCOPED = tarball_key("@acme/widgets", "1.0.0", SHA)
UNSCOPED = tarball_key("lodash", "4.17.21", SHA)
MB = 1024 * 1024


def put_bytes(storage: TarballStorage, key: str, data: bytes) -> None:
    storage.put(key, io.BytesIO(data), len(data))


def read_all(storage: TarballStorage, key: str) -> bytes:
    with storage.open(key) as fh:
        return fh.read()


class TestStorageContract:
    def test_scoped_key_layout(self) -> None:
        assert f"@acme/widgets/widgets-1.0.0-{SHA[:12]}.tgz" == SCOPED

    def test_put_then_read_back(self, storage: TarballStorage) -> None:
        data = b"\x1f\x8b tarball bytes \x00\xff" * 100
        assert not storage.exists(SCOPED)
        put_bytes(storage, SCOPED, data)
        assert storage.exists(SCOPED)
        assert storage.size(SCOPED) == len(data)
        assert read_all(storage, SCOPED) == data
        assert storage.list_keys() == [SCOPED]

    def test_open_is_a_stream(self, storage: TarballStorage) -> None:
        data = bytes(range(256)) * 64
        put_bytes(storage, UNSCOPED, data)
        with storage.open(UNSCOPED) as fh:
            assert fh.read(10) == data[:10]
            assert fh.read(1000) == data[10:1010]
            assert fh.read() == data[1010:]
            assert fh.read(1) == b""

    def test_empty_object(self, storage: TarballStorage) -> None:
        put_bytes(storage, UNSCOPED, b"")
        assert storage.exists(UNSCOPED)
        assert storage.size(UNSCOPED) == 0
        assert read_all(storage, UNSCOPED) == b""

    def test_missing_key_is_not_found(self, storage: TarballStorage) -> None:
        assert storage.exists(SCOPED) is False
        with pytest.raises(StorageNotFound) as info:
            storage.open(SCOPED)
        assert isinstance(info.value, FileNotFoundError)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__  # raised "from None": no botocore chain
        with pytest.raises(StorageNotFound):
            storage.size(SCOPED)

    def test_put_existing_key_is_a_noop(self, storage: TarballStorage) -> None:
        put_bytes(storage, SCOPED, b"first")
        # Keys are content-addressed: a second put must not even read its source.
        storage.put(SCOPED, MustNotRead(), 5)  # type: ignore[arg-type]
        assert read_all(storage, SCOPED) == b"first"
        assert storage.list_keys() == [SCOPED]

    def test_delete_is_idempotent(self, storage: TarballStorage) -> None:
        put_bytes(storage, SCOPED, b"abc")
        put_bytes(storage, UNSCOPED, b"def")
        storage.delete(SCOPED)
        assert not storage.exists(SCOPED)
        with pytest.raises(StorageNotFound):
            storage.open(SCOPED)
        storage.delete(SCOPED)  # again: not an error
        storage.delete("@acme/never/never-0.0.0-000000000000.tgz")
        assert storage.list_keys() == [UNSCOPED]
        assert read_all(storage, UNSCOPED) == b"def"

    def test_list_keys_sorted_without_prefix(self, storage: TarballStorage) -> None:
        keys = [
            tarball_key("@acme/widgets", "1.0.0", "a" * 40),
            tarball_key("@acme/widgets", "1.10.0", "b" * 40),
            tarball_key("@acme/gadgets", "0.1.0-beta.1", "c" * 40),
            tarball_key("@other/x", "2.0.0", "d" * 40),
            tarball_key("lodash", "4.17.21", "e" * 40),
        ]
        for i, key in enumerate(reversed(keys)):
            put_bytes(storage, key, f"tarball {i}".encode())
        assert storage.list_keys() == sorted(keys)
        for i, key in enumerate(reversed(keys)):
            assert read_all(storage, key) == f"tarball {i}".encode()

    @pytest.mark.parametrize(
        ("size", "fail_after"),
        [(1000, 0), (1000, 500), (20 * MB, 10 * MB)],  # the last one is a multipart upload on S3
        ids=["at-once", "midway", "large-midway"],
    )
    def test_failing_source_leaves_nothing(self, storage: TarballStorage, size: int, fail_after: int) -> None:
        with pytest.raises(SourceBroke):
            storage.put(SCOPED, FailingStream(size, fail_after), size)  # type: ignore[arg-type]
        assert not storage.exists(SCOPED)
        assert storage.list_keys() == []
        # The key is still free: a later complete upload succeeds.
        put_bytes(storage, SCOPED, b"complete")
        assert read_all(storage, SCOPED) == b"complete"

    @pytest.mark.parametrize("declared", [99, 101, 0], ids=["short", "long", "zero"])
    def test_size_mismatch_is_refused(self, storage: TarballStorage, declared: int) -> None:
        data = b"x" * 100
        with pytest.raises(ValueError, match="expected"):
            storage.put(SCOPED, io.BytesIO(data), declared)
        assert not storage.exists(SCOPED)
        assert storage.list_keys() == []

    def test_large_streamed_round_trip(self, storage: TarballStorage) -> None:
        size = 20 * MB + 12345  # not a multiple of any chunk size
        source = GeneratedStream(size, seed=42)
        storage.put(SCOPED, source, size)  # type: ignore[arg-type]
        assert source.remaining == 0
        assert storage.size(SCOPED) == size
        with storage.open(SCOPED) as fh:
            digest, length = sha256_of_stream(fh)
        assert length == size
        assert digest == source.sha256

    def test_concurrent_puts_from_threads(self, storage: TarballStorage) -> None:
        keys = [tarball_key("@acme/widgets", f"1.0.{i}", f"{i:040x}") for i in range(8)]
        errors: list[BaseException] = []

        def work(i: int, key: str) -> None:
            try:
                put_bytes(storage, key, f"version {i}".encode() * 1000)
                put_bytes(storage, keys[0], b"same bytes for everyone")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i, k)) for i, k in enumerate(keys[1:], 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert errors == []
        assert storage.list_keys() == sorted(keys)
        assert read_all(storage, keys[0]) == b"same bytes for everyone"
        for i, key in enumerate(keys[1:], 1):
            assert read_all(storage, key) == f"version {i}".encode() * 1000

    def test_check_passes_on_a_working_backend(self, storage: TarballStorage) -> None:
        storage.check()
        # check() leaves nothing behind that list_keys would report.
        assert storage.list_keys() == []
