"""nmr.worker's pieces, without a server (tests/e2e/test_worker_wire.py runs the real worker)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from gunicorn.http.body import Body, ChunkedReader, LengthReader

from nmr.worker import HOLD_LIMIT, JOIN_LIMIT, CoalescingSocket, QuietAccessLogger, body_consumed


class RecordingSocket:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def sendall(self, data: bytes, *flags: int) -> None:
        self.calls.append(("sendall", bytes(data)))

    def sendfile(self, *args: object) -> int:
        self.calls.append(("sendfile", b""))
        return 0

    def fileno(self) -> int:
        return 7


def test_headers_and_a_small_body_leave_in_one_sendall():
    raw = RecordingSocket()
    sock = CoalescingSocket(raw)
    sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    assert raw.calls == []  # held
    sock.sendall(b"body")
    sock.sendall(b"more")
    sock.flush()
    assert raw.calls == [("sendall", b"HTTP/1.1 200 OK\r\n\r\nbody"), ("sendall", b"more")]


def test_a_body_over_the_join_limit_goes_out_after_the_headers_uncopied():
    raw = RecordingSocket()
    sock = CoalescingSocket(raw)
    big = b"x" * (JOIN_LIMIT + 1)
    sock.sendall(b"head")
    sock.sendall(big)
    assert raw.calls == [("sendall", b"head"), ("sendall", big)]


def test_a_large_first_write_is_not_held():
    raw = RecordingSocket()
    sock = CoalescingSocket(raw)
    first = b"h" * (HOLD_LIMIT + 1)
    sock.sendall(first)
    assert raw.calls == [("sendall", first)]


def test_held_headers_go_first_for_any_other_socket_operation():
    raw = RecordingSocket()
    sock = CoalescingSocket(raw)
    sock.sendall(b"head")
    sock.sendfile(io.BytesIO(b"file"), 0, 4)
    assert raw.calls == [("sendall", b"head"), ("sendfile", b"")]
    assert sock.fileno() == 7


def test_flush_sends_headers_of_a_response_without_body_once():
    raw = RecordingSocket()
    sock = CoalescingSocket(raw)
    sock.sendall(b"HTTP/1.1 304 Not Modified\r\n\r\n")
    sock.flush()
    sock.flush()
    assert raw.calls == [("sendall", b"HTTP/1.1 304 Not Modified\r\n\r\n")]


def test_body_consumed_only_for_a_length_body_read_to_its_end():
    def mesg(reader: object, failed: bool = False) -> SimpleNamespace:
        body = Body(reader)
        body.failed = failed
        return SimpleNamespace(body=body)

    assert body_consumed(mesg(LengthReader(None, 0)))
    assert not body_consumed(mesg(LengthReader(None, 5)))  # unread bytes: gunicorn drains them
    assert not body_consumed(mesg(LengthReader(None, 0), failed=True))
    assert not body_consumed(mesg(ChunkedReader(None, None)))  # where it ends is unknown here
    assert not body_consumed(None)


def test_quiet_logger_builds_no_access_line():
    logger = QuietAccessLogger.__new__(QuietAccessLogger)  # no gunicorn config needed
    logger.atoms = None  # would raise if access() tried to build the line
    assert logger.access(None, None, {}, None) is None


def test_mmap_threshold_is_fixed_unless_the_operator_set_it(monkeypatch):
    import ctypes.util

    from nmr.worker import fix_mmap_threshold

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    has_mallopt = hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt")
    assert fix_mmap_threshold() is has_mallopt  # glibc (Debian, this CI): True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert fix_mmap_threshold() is False
