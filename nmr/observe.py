"""Per-request observation as WSGI middleware: the access log, request metrics, the body read timeout.

It wraps the Flask app (inside the path-prefix middleware) so it sees every request, including
routing 404s and errors, and it measures until the last response byte left, not until the
view returned (tarballs stream after that). The GitHub login comes from the view layer through
``environ["nmr.login"]`` (set by ``nmr.api.helpers.identity``).

What is never logged: the ``Authorization`` header (it is not read here at all), query
strings (none of nmr's routes needs one to be understood, and a client could put anything
there), user-info in an absolute-form request target, and the token in ``npm logout``'s
``DELETE /-/user/token/<token>`` path.
"""

from __future__ import annotations

import logging
import re
import time
import typing as t
from urllib.parse import quote

from werkzeug.exceptions import RequestTimeout

from nmr.metrics import NULL_METRICS

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from nmr.metrics import Metrics

access_log = logging.getLogger("nmr.access")

#: The only values the ``route`` label takes (metrics must never carry package names).
ROUTES = (
    "packument",
    "manifest",
    "tarball",
    "publish",
    "update",
    "unpublish",
    "dist-tags",
    "search",
    "user",
    "audit",
    "ping",
    "ready",
    "metrics",
    "other",
)
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")
_REDACTED_PREFIXES = ("/-/user/token/",)


def route_label(method: str, path: str) -> str:
    """The route family of a request, from its method and decoded path (``PATH_INFO``)."""
    fixed = {
        "/-/ping": "ping",
        "/-/ready": "ready",
        "/-/metrics": "metrics",
        "/-/v1/search": "search",
        "/-/whoami": "user",
    }
    if path in fixed:
        return fixed[path]
    if path.startswith("/-/user/") or path == "/-/v1/login":
        return "user"
    if path.startswith("/-/npm/v1/security/"):
        return "audit"
    if path.startswith("/-/package/"):
        return "dist-tags" if "/dist-tags" in path else "other"
    if path.startswith("/-/") or path in ("", "/"):
        return "other"
    segments = path.strip("/").split("/")
    rest = segments[2:] if segments[0].startswith("@") else segments[1:]
    if not rest:
        return {"GET": "packument", "HEAD": "packument", "PUT": "publish"}.get(method, "other")
    if rest[0] == "-rev":
        return {"PUT": "update", "DELETE": "unpublish"}.get(method, "other")
    if rest[0] == "-" and len(rest) >= 2:
        return {"GET": "tarball", "HEAD": "tarball", "DELETE": "unpublish"}.get(method, "other")
    if len(rest) == 1 and method in ("GET", "HEAD"):
        return "manifest"
    return "other"


def loggable_path(environ: WSGIEnvironment) -> str:
    """The request path as the client sent it (percent-encoded), without query or credentials."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path = raw.split("?", 1)[0].split("#", 1)[0]
        if "://" in path:  # absolute-form target: drop scheme and authority (which may hold user:password@)
            path = "/" + path.split("://", 1)[1].partition("/")[2]
    else:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/@:%")
    for prefix in _REDACTED_PREFIXES:
        at = path.find(prefix)
        if at != -1:
            path = path[: at + len(prefix)] + "***"
    # Nothing but printable ASCII reaches the log: no forged lines, no terminal escapes.
    return _UNPRINTABLE.sub(lambda m: f"%{ord(m.group()) & 0xFF:02X}", path)


class _DeadlineInput:
    """``wsgi.input`` whose socket has a timeout: a stalled upload becomes a 408, not a stuck thread."""

    def __init__(self, stream: t.Any, timeout: float) -> None:
        self._stream, self._timeout = stream, timeout

    def _timed_out(self) -> RequestTimeout:
        return RequestTimeout(
            f"the request body stalled: no data for {self._timeout:g}s (server.read_timeout); send it again"
        )

    def read(self, size: int | None = None) -> bytes:
        try:
            data: bytes = self._stream.read(size) if size is not None else self._stream.read()
            return data
        except TimeoutError:
            raise self._timed_out() from None

    def readline(self, size: int | None = None) -> bytes:
        try:
            data: bytes = self._stream.readline(size) if size is not None else self._stream.readline()
            return data
        except TimeoutError:
            raise self._timed_out() from None

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _Observed:
    """The response iterable, counting bytes and reporting when it is exhausted or closed."""

    def __init__(self, result: Iterable[bytes], done: t.Callable[[int], None]) -> None:
        self._result, self._done, self._sent = result, done, 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            self._sent += len(chunk)
            yield chunk
        # The server wrote every chunk before asking for the next: the response is sent. Report
        # now, as not every server closes promptly (the test client closes on garbage collection).
        self._done(self._sent)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._sent)


#: Requests whose body nmr reads, and so the only ones that need a read deadline.
_BODY_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})


class RequestObserver:
    """WSGI middleware: one access-log line and the request metrics per request."""

    def __init__(self, app: WSGIApplication, metrics: Metrics, read_timeout: float = 0) -> None:
        self.app, self.metrics, self.read_timeout = app, metrics, read_timeout

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        has_body = method in _BODY_METHODS
        if not has_body and self.metrics is NULL_METRICS and not access_log.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)  # nothing to observe and no body to time out
        route = route_label(method, environ.get("PATH_INFO", ""))
        seen: dict[str, t.Any] = {"status": 500, "length": None, "finished": False}

        def observing_start_response(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Any:
            seen["status"] = int(status.split(" ", 1)[0])
            for name, value in headers:
                if name.lower() == "content-length" and value.isdigit():
                    seen["length"] = int(value)
            return start_response(status, headers, exc_info)

        def finish(sent: int) -> None:
            if seen["finished"]:
                return
            seen["finished"] = True
            self._record(environ, method, route, seen["status"], sent, time.perf_counter() - started)

        sock = self._arm_read_timeout(environ) if has_body else None
        self.metrics.inc("http_requests_in_flight")
        try:
            result = self.app(environ, observing_start_response)
        except BaseException:
            finish(0)
            raise
        finally:
            if sock is not None:
                # Only the body read has a deadline. Writes keep none: sendall's timeout bounds a
                # whole packument write, which a slow client may legitimately need minutes for.
                sock.settimeout(None)
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(result, wrapper):
            # Keep gunicorn's sendfile path: report from the wrapper's close() instead of wrapping it.
            original_close = getattr(result, "close", None)

            def close() -> None:
                try:
                    if original_close is not None:
                        original_close()
                finally:
                    finish(seen["length"] or 0)

            result.close = close  # type: ignore[attr-defined]
            return result
        return _Observed(result, finish)

    def _arm_read_timeout(self, environ: WSGIEnvironment) -> t.Any:
        sock = environ.get("gunicorn.socket")
        if sock is None or not self.read_timeout or not environ.get("SERVER_PROTOCOL", "").startswith("HTTP/1"):
            return None
        sock.settimeout(self.read_timeout)
        environ["wsgi.input"] = _DeadlineInput(environ["wsgi.input"], self.read_timeout)
        return sock

    def _record(self, environ: WSGIEnvironment, method: str, route: str, status: int, sent: int, took: float) -> None:
        metrics = self.metrics
        metrics.inc("http_requests_in_flight", amount=-1)
        labels = {"route": route, "method": method if method in _METHODS else "OTHER", "status": str(status)}
        metrics.inc("http_requests_total", labels)
        metrics.observe("http_request_duration_seconds", took, {"route": route})
        metrics.inc("http_response_bytes_total", {"route": route}, amount=sent)
        if route == "tarball" and status in (200, 206):
            metrics.inc("storage_bytes_read_total", amount=sent)
        if not access_log.isEnabledFor(logging.INFO):
            return
        login = environ.get("nmr.login") or None
        if login is not None:  # a name from npm login's body is the client's text until proven
            login = _UNPRINTABLE.sub("?", str(login))[:100]
        path = loggable_path(environ)
        remote = environ.get("REMOTE_ADDR") or "-"
        fields = {
            "remote": remote,
            "login": login,
            "method": method,
            "path": path,
            "status": status,
            "bytes": sent,
            "duration_ms": round(took * 1000, 3),
            "route": route,
        }
        access_log.info(
            '%s %s "%s %s" %d %d %.1fms',
            remote,
            login or "-",
            _UNPRINTABLE.sub("?", method),
            path,
            status,
            sent,
            took * 1000,
            extra={"fields": fields},
        )
