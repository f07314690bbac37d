"""nmr's gunicorn worker (``nmr.worker.NmrWorker``) on the wire: every kind of response comes
out byte for byte as HTTP/1.1 says, and a kept-alive connection stays usable after each."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import typing as t

import pytest

from tests.e2e.harness import REPO_ROOT, free_port
from tests.e2e.worker_app import BIG, FILE_BYTES, FILE_ENV


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[str, int]]:
    port = free_port()
    served_file = tmp_path_factory.mktemp("worker") / "file.tgz"
    served_file.write_bytes(FILE_BYTES)
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, FILE_ENV: str(served_file)}
    cmd = [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
        "--worker-class", "nmr.worker.NmrWorker", "--logger-class", "nmr.worker.QuietAccessLogger",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "tests.e2e.worker_app:app",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"gunicorn did not start: {log}") from None
                time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(20)


Body = bytes | t.Iterable[bytes] | None


def fetch(
    conn: http.client.HTTPConnection, method: str, path: str, body: Body = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    chunked = not isinstance(body, bytes | None)  # an iterable goes out with chunked framing
    conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def test_every_kind_of_response_on_one_kept_alive_connection(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        status, headers, body = fetch(conn, "GET", "/small")
        assert (status, body, headers["content-length"]) == (200, b'{"small":true}', "14")
        sock = conn.sock
        local = sock.getsockname()

        status, headers, body = fetch(conn, "GET", "/big")
        assert status == 200 and body == BIG

        status, headers, body = fetch(conn, "GET", "/pieces")
        assert status == 200 and headers["transfer-encoding"] == "chunked" and body == b"one,two,three"

        status, headers, body = fetch(conn, "GET", "/file")
        assert status == 200 and body == FILE_BYTES

        status, headers, body = fetch(conn, "GET", "/not-modified")
        assert (status, body, headers["etag"]) == (304, b"", '"x"')

        status, headers, body = fetch(conn, "HEAD", "/small")
        assert (status, body, headers["content-length"]) == (200, b"", "14")

        status, _, body = fetch(conn, "POST", "/echo", body=b"a" * 100_000)
        assert status == 200 and body == b"a" * 100_000

        # A body the app never read is drained, and the next request still parses.
        status, _, body = fetch(conn, "POST", "/ignore-body", body=b"GET /small HTTP/1.1\r\n\r\n" * 10)
        assert (status, body) == (200, b"ok")

        chunks = iter([b"chunk-1;", b"chunk-2"])
        status, _, body = fetch(conn, "PUT", "/echo", body=chunks, headers={"Transfer-Encoding": "chunked"})
        assert (status, body) == (200, b"chunk-1;chunk-2")

        status, _, body = fetch(conn, "GET", "/small")
        assert (status, body) == (200, b'{"small":true}')
        assert conn.sock is sock and sock.getsockname() == local  # one connection throughout
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\nGET /not-modified HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    parts = data.split(b"HTTP/1.1 ")[1:]
    assert [p.split(b" ", 1)[0] for p in parts] == [b"200", b"304", b"200"]
    assert parts[0].endswith(b'\r\n\r\n{"small":true}') and parts[2].endswith(b'{"small":true}')


def test_a_failing_app_gets_a_500_and_the_server_goes_on(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        status, _, _ = fetch(conn, "GET", "/fail")
        assert status == 500
    finally:
        conn.close()
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        assert fetch(conn, "GET", "/small")[0] == 200
    finally:
        conn.close()


def test_expect_100_continue_is_answered_before_the_body_is_sent(server: tuple[str, int]) -> None:
    body = b"x" * 5000
    with socket.create_connection(server, timeout=10) as sock:
        head = f"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        sock.sendall(head.encode())
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"  # not held back with the final headers
        sock.sendall(body)
        data = b""
        while not data.endswith(body):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and b"\r\n\r\n" + body in data
