"""A stub upstream npm registry on 127.0.0.1 for tests of forwarding.

It serves packuments and tarballs built from ``tests.builders.make_tarball``, answers 304 to a
matching ``If-None-Match``, records every request (path and headers) and can be told to fail
(a status code for every answer), to be slow, or to send tarball bytes that do not match their
packument. Audit POSTs are recorded and answered with ``audit_answer``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import socket
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from tests.builders import integrity_of, make_tarball


class StubRegistry:
    def __init__(self) -> None:
        self.packuments: dict[str, dict[str, t.Any]] = {}
        self.tarballs: dict[str, bytes] = {}  # path -> bytes
        self.corrupt: set[str] = set()  # tarball paths answered with other bytes
        self.truncate: set[str] = set()  # tarball paths whose connection drops halfway
        self.gzip_transport = False  # send tarballs with Content-Encoding: gzip on top
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, normalised path, headers)
        self.extra: dict[str, bytes] = {}  # other GET paths -> JSON body (keys, attestations)
        self.audit_bodies: list[tuple[str, t.Any]] = []
        self.audit_answer: dict[str, t.Any] = {}
        self.fail_status: int | None = None
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.port = 0
        self.connections: set[socket.socket] = set()

    # -- content ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(
        self,
        name: str,
        version: str,
        *,
        dependencies: dict[str, str] | None = None,
        tag: str = "latest",
        manifest: dict[str, t.Any] | None = None,
        code: str | None = None,
    ) -> bytes:
        """Add one version (and its tarball); returns the tarball bytes."""
        extra = {**(manifest or {})}
        if dependencies:
            extra["dependencies"] = dependencies
        files = {"index.js": (code or f"module.exports = {json.dumps(name + '@' + version)};\n").encode()}
        data = make_tarball(name, version, files=files, manifest=extra)
        base = name.rsplit("/", 1)[-1]
        path = f"/{name}/-/{base}-{version}.tgz"
        self.tarballs[path] = data
        doc = self.packuments.setdefault(
            name,
            {
                "_id": name,
                "name": name,
                "dist-tags": {},
                "versions": {},
                "time": {"created": "2020-01-01T00:00:00.000Z"},
            },
        )
        doc["versions"][version] = {
            "name": name,
            "version": version,
            "_id": f"{name}@{version}",
            **extra,
            "scripts": {"test": "echo ok"},
            "dist": {
                "tarball": self.url + path,
                "shasum": hashlib.sha1(data).hexdigest(),
                "integrity": integrity_of(data),
            },
        }
        doc["dist-tags"][tag] = version
        stamp = f"2020-01-01T00:00:{len(doc['versions']):02d}.000Z"
        doc["time"][version] = stamp
        doc["time"]["modified"] = stamp
        return data

    # -- observation ------------------------------------------------------------------------

    def count(self, path: str, method: str = "GET") -> int:
        with self.lock:
            return sum(1 for m, p, _h in self.requests if p == path and m == method)

    def paths(self) -> list[str]:
        with self.lock:
            return [p for _m, p, _h in self.requests]

    def headers_of(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [h for _m, p, h in self.requests if p == path]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- server -----------------------------------------------------------------------------

    def start(self, port: int = 0) -> StubRegistry:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: t.Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with stub.lock:
                    stub.connections.add(self.connection)

            def _path(self) -> str:
                raw = self.path.split("?", 1)[0]
                return "/" + unquote(raw.lstrip("/").replace("%2f", "/").replace("%2F", "/"))

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def _record(self) -> str:
                path = self._path()
                with stub.lock:
                    stub.requests.append((self.command, path, dict(self.headers.items())))
                return path

            def do_GET(self) -> None:
                path = self._record()
                if stub.delay:
                    time.sleep(stub.delay)
                if stub.fail_status is not None:
                    self._send(stub.fail_status, b'{"error":"stub failure"}', {"Content-Type": "application/json"})
                    return
                if path in stub.extra:
                    self._send(200, stub.extra[path], {"Content-Type": "application/json"})
                    return
                if path in stub.tarballs:
                    data = stub.tarballs[path]
                    if path in stub.corrupt:
                        data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    headers = {"Content-Type": "application/octet-stream"}
                    if stub.gzip_transport:
                        data = gzip.compress(data)
                        headers["Content-Encoding"] = "gzip"
                    if path in stub.truncate:
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self._send(200, data, headers)
                    return
                doc = stub.packuments.get(path[1:])
                if doc is None:
                    self._send(404, b'{"error":"Not found"}', {"Content-Type": "application/json"})
                    return
                body = json.dumps(doc).encode()
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", {"ETag": etag})
                    return
                self._send(200, body, {"Content-Type": "application/json", "ETag": etag})

            def do_POST(self) -> None:
                path = self._record()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with stub.lock:
                    stub.audit_bodies.append((path, body))
                if stub.fail_status is not None:
                    self._send(stub.fail_status, b'{"error":"stub failure"}')
                    return
                self._send(200, json.dumps(stub.audit_answer).encode(), {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:  # a stopped registry also drops the keep-alive connections clients hold
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self.connections.clear()
