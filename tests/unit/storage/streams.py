"""Source streams for storage tests: generated, failing and must-not-be-read readers."""

from __future__ import annotations

import hashlib
import random


class GeneratedStream:
    """``size`` deterministic pseudo-random bytes, produced as read (never all in memory).

    Non-seekable, like a request body. ``sha256`` is the digest of everything handed out.
    """

    def __init__(self, size: int, seed: int = 1) -> None:
        self.size = size
        self.remaining = size
        self._random = random.Random(seed)
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, amount: int | None = -1) -> bytes:
        n = self.remaining if amount is None or amount < 0 else min(amount, self.remaining)
        data = self._random.randbytes(n)
        self.remaining -= n
        self._hash.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class SourceBroke(RuntimeError):
    """Raised by ``FailingStream``: the client went away in the middle of an upload."""


class FailingStream(GeneratedStream):
    """Hands out ``fail_after`` bytes of a longer stream, then raises ``SourceBroke``."""

    def __init__(self, size: int, fail_after: int) -> None:
        super().__init__(size)
        self.fail_after = fail_after
        self.handed_out = 0

    def read(self, amount: int | None = -1) -> bytes:
        if self.handed_out >= self.fail_after:
            raise SourceBroke(f"source failed after {self.handed_out} bytes")
        want = self.remaining if amount is None or amount < 0 else amount
        data = super().read(min(want, self.fail_after - self.handed_out))
        self.handed_out += len(data)
        return data


class MustNotRead:
    """A source whose ``read`` fails the test: proves a put did not touch its input."""

    def readable(self) -> bool:
        return True

    def read(self, amount: int | None = -1) -> bytes:
        raise AssertionError("put read its source although the key already exists")


def sha256_of_stream(stream: object, chunk: int = 1024 * 1024) -> tuple[str, int]:
    """Digest and length of a readable stream, read in chunks."""
    digest = hashlib.sha256()
    total = 0
    while data := stream.read(chunk):  # type: ignore[attr-defined]
        digest.update(data)
        total += len(data)
    return digest.hexdigest(), total
