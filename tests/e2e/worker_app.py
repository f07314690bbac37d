"""A WSGI app with one route per kind of response, for tests/e2e/test_worker_wire.py.

Served by a real gunicorn with nmr's worker, it exercises what ``nmr.worker`` changes: how a
response reaches the socket and what happens to a request body before the next request.
"""

from __future__ import annotations

import os
import typing as t

BIG = bytes(range(256)) * 2048  # 512 KiB, over the join limit
FILE_BYTES = b"tarball-bytes " * 5000  # the test writes them to the file named by FILE_ENV
FILE_ENV = "NMR_TEST_WORKER_FILE"


def app(environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/small":
        body = b'{"small":true}'
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/big":
        start_response("200 OK", [("Content-Length", str(len(BIG)))])
        return [BIG]
    if path == "/pieces":  # no length: gunicorn frames it chunked
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"one,", b"", b"two,", b"three"]
    if path == "/file":
        start_response("200 OK", [("Content-Length", str(len(FILE_BYTES)))])
        return environ["wsgi.file_wrapper"](open(os.environ[FILE_ENV], "rb"))
    if path == "/not-modified":
        start_response("304 Not Modified", [("ETag", '"x"')])
        return []
    if path == "/echo":
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]
    if path == "/ignore-body":  # answers without reading the body: gunicorn must drain it
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    if path == "/fail":
        raise RuntimeError("boom")
    start_response("404 Not Found", [("Content-Length", "0")])
    return []
