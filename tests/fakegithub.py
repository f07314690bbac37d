"""Test doubles for GitHub: ``FakeClock`` now; the HTTP server comes next."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that only move when a test says so (pass as ``clock=``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
