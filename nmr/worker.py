"""gunicorn integration: nmr's worker class and logger class.

``nmr serve`` runs one gthread worker (LevelDB allows one process), so every request of the
registry runs on one core, under one GIL. Profiled under wrk (py-spy ``--gil``), gunicorn
spends more of that core on a small GET than nmr does, and three of its costs buy nmr
nothing:

* its access log: with ``logconfig_dict`` set (nmr sets it, so gunicorn's own lines share
  nmr's format) gunicorn builds every request's log atoms, the whole environ included, and
  hands them to a logger that nmr keeps silent. That was 8% of the worker's CPU. nmr writes
  its own access log (``nmr.observe``), so ``QuietAccessLogger.access`` does nothing;
* two ``sendall`` calls per response, headers then body;
* the "drain" of a GET's empty body: two ``settimeout`` calls (four ``fcntl``) around an
  empty read, before the connection goes back to the poller and again before the next
  request is parsed.

``NmrWorker`` is gthread with the last two removed; nothing it does changes the bytes on the
wire. With the quiet logger it took the worker's CPU per packument request from about
580-770 µs to 430-510 µs (bench/README.md). It also fixes glibc's mmap threshold in the
worker (``fix_mmap_threshold``), so the memory of large writes does not stay behind,
fragmented. It relies on gthread internals (``handle_request(req, conn)``,
``_keepalive_after(conn, keepalive)``, ``conn.parser.mesg``), which is why setup.cfg pins
gunicorn's major version; every end-to-end test runs its requests through it, and
tests/unit/test_worker.py and tests/e2e/test_worker_wire.py check the pieces.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import typing as t

from gunicorn.glogging import Logger
from gunicorn.http.body import LengthReader
from gunicorn.workers.gthread import ThreadWorker

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024
HOLD_LIMIT = 16 * 1024  # a first write up to this size (the status line and headers) waits
JOIN_LIMIT = 256 * 1024  # for a body up to this size, copied behind it into one sendall


class CoalescingSocket:
    """A client socket for the length of one response: holds the first small write (the
    headers) and sends it with the next one, so a small response leaves in one ``sendall``.

    ``flush()`` sends anything still held (a response without a body). Any other socket
    operation (``sendfile``, ``close``, ``setblocking``...) flushes first, then goes to the
    real socket, so the order of bytes on the wire never changes.
    """

    __slots__ = ("_held", "_passed", "sock")

    def __init__(self, sock: t.Any) -> None:
        self.sock = sock
        self._held: bytes | None = None
        self._passed = False  # after the first joined or large write, writes go straight out

    def sendall(self, data: bytes, *flags: int) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._passed = True
            if len(data) <= JOIN_LIMIT and not flags:
                self.sock.sendall(held + data)
                return
            self.sock.sendall(held)
        elif not self._passed and not flags and len(data) <= HOLD_LIMIT:
            self._held = bytes(data)
            return
        self._passed = True
        self.sock.sendall(data, *flags)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._passed = True
            self.sock.sendall(held)

    def __getattr__(self, name: str) -> t.Any:
        self.flush()
        return getattr(self.sock, name)


def body_consumed(mesg: t.Any) -> bool:
    """The request's body was read to its end (a GET has an empty one): nothing is left of it
    on the socket, so there is nothing to drain."""
    body = getattr(mesg, "body", None)
    reader: t.Any = getattr(body, "reader", None)
    return type(reader) is LengthReader and reader.length == 0 and getattr(body, "failed", True) is False


def fix_mmap_threshold() -> bool:
    """Have glibc serve every allocation over 128 KiB with its own mmap, returned on free.

    glibc starts there too, but raises the threshold each time such a block is freed, after
    which the large buffers of a write (a 1,000-version document and its packuments are
    1.3 MB of JSON each, several per publish) come from the heaps of the worker's threads
    and stay there, fragmented. Measured: a worker that seeded the benchmark's data ended at
    160 MiB with the moving threshold and 84 MiB with a fixed one. Setting the threshold
    once stops the moving (mallopt(3)). An operator's own ``MALLOC_MMAP_THRESHOLD_`` wins;
    on a C library without ``mallopt`` nothing changes. Returns whether it was set.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class NmrWorker(ThreadWorker):
    """gthread, with one ``sendall`` per small response and no drain of a consumed body."""

    def init_process(self) -> None:
        fix_mmap_threshold()  # in the worker, which holds the data; before the app is built
        super().init_process()

    def handle_request(self, req: t.Any, conn: t.Any) -> bool:
        raw = conn.sock
        conn.sock = wrapped = CoalescingSocket(raw)
        try:
            keepalive: bool = super().handle_request(req, conn)
            wrapped.flush()
            return keepalive
        finally:
            conn.sock = raw

    def _keepalive_after(self, conn: t.Any, keepalive: bool) -> bool:
        if keepalive and body_consumed(conn.parser.mesg):
            # The parser drains the previous message again before parsing the next one; with
            # no message left it skips that too. gthread only looks at the unreader's buffer.
            conn.parser.mesg = None
            return True
        result: bool = super()._keepalive_after(conn, keepalive)
        return result


class QuietAccessLogger(Logger):
    """gunicorn's logger without its access log: nmr writes its own (``nmr.observe``), with the
    GitHub login and never a credential, so gunicorn need not build a line per request."""

    def access(self, resp: t.Any, req: t.Any, environ: t.Any, request_time: t.Any) -> None:
        return None
