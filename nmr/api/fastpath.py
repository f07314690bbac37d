"""A WSGI fast path for the two hottest requests: GET of a hosted packument or tarball.

It serves only the success case (200/304/302), built by the same ``nmr.api.answers``
functions the Flask views use, and hands every other request, and any request that raises,
to the Flask app, which answers it (errors included) the usual way. That keeps one place
for errors and rare cases while a packument read skips Flask's request machinery, which
costs several times the lookup itself.
"""

from __future__ import annotations

import functools
import logging
import os
import typing as t

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_host

from nmr.api.answers import Answer, error_answer, packument_answer, tarball_answer
from nmr.api.helpers import parse_authorization
from nmr.errors import NmrError
from nmr.names import split_package_path, validate_name

if t.TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from nmr.app import Services

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=64)
def _status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES[status].upper()}"  # as werkzeug writes it


@functools.lru_cache(maxsize=64)
def _request_base(scheme: str, host: str, server_name: str, server_port: str, script: str) -> str:
    environ = {"wsgi.url_scheme": scheme, "HTTP_HOST": host, "SERVER_NAME": server_name, "SERVER_PORT": server_port}
    return f"{scheme}://{get_host(environ)}{script}".rstrip("/")


class FastPath:
    def __init__(self, app: WSGIApplication, services: Services) -> None:
        self.app = app
        self.services = services
        self.public_url = services.config.get("server.public_url").rstrip("/")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if (method != "GET" and method != "HEAD") or not raw or "?" in raw or "HTTP_RANGE" in environ:
            return self.app(environ, start_response)
        script = environ.get("SCRIPT_NAME", "")
        if script and raw.startswith(script):
            raw = raw[len(script) :]
        if not raw.startswith("/@"):
            return self.app(environ, start_response)  # unscoped names are never hosted
        try:
            answer = self._answer(environ, raw, script)
        except NmrError as exc:  # answered here: a retry through Flask would ask GitHub twice
            answer = error_answer(exc.status, exc.message, exc.headers)
        except Exception:  # unexpected: the Flask path answers it again, and logs it
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        if answer.path is not None:
            try:
                body = _file_body(answer, environ, method == "HEAD")
            except OSError:  # gone from disk: the Flask path answers with the storage error
                return self.app(environ, start_response)
            start_response(_status_line(answer.status), answer.headers)
            return body
        start_response(_status_line(answer.status), answer.headers)
        if answer.stream is not None:
            stream = answer.stream
            if method == "HEAD":
                stream.close()
                return []
            return _Stream(stream)
        return [] if method == "HEAD" else [answer.body]

    def _answer(self, environ: WSGIEnvironment, raw: str, script: str) -> Answer | None:
        pp = split_package_path(raw)
        registry = self.services.registry
        if not registry.is_hosted(pp.name):
            return None
        validate_name(pp.name)
        identity = registry.identify(parse_authorization(environ.get("HTTP_AUTHORIZATION")))
        environ["nmr.login"] = identity.login  # for the access log (nmr.observe)
        rest = pp.rest
        if not rest:
            base = self.public_url or _request_base(
                environ["wsgi.url_scheme"],
                environ.get("HTTP_HOST", ""),
                environ.get("SERVER_NAME", ""),
                str(environ.get("SERVER_PORT", "")),
                script,
            )
            return packument_answer(
                self.services,
                identity,
                pp.name,
                base_url=base,
                accept=environ.get("HTTP_ACCEPT"),
                accept_encoding=environ.get("HTTP_ACCEPT_ENCODING"),
                if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
                if_modified_since=environ.get("HTTP_IF_MODIFIED_SINCE"),
            )
        if len(rest) == 2 and rest[0] == "-":
            return tarball_answer(
                self.services, identity, pp.name, rest[1], if_none_match=environ.get("HTTP_IF_NONE_MATCH")
            )
        return None


#: A tarball up to this size is read in one system call and sent with the headers in one
#: write; a bigger one goes out with sendfile, whose setup costs more than a small read.
SMALL_FILE = 256 * 1024


def _file_body(answer: Answer, environ: WSGIEnvironment, head: bool) -> t.Iterable[bytes]:
    """The body of a 200 for a local file (opening it raises OSError if it is gone)."""
    fd = os.open(t.cast(str, answer.path), os.O_RDONLY | os.O_CLOEXEC)
    if head:
        os.close(fd)
        return []
    if 0 <= answer.size <= SMALL_FILE:
        try:
            data = os.read(fd, answer.size + 1)  # one more byte shows a file longer than its entry
        except BaseException:
            os.close(fd)
            raise
        if len(data) == answer.size:
            os.close(fd)
            return [data]
        os.lseek(fd, 0, os.SEEK_SET)  # a short read or a size mismatch: stream it as stored
    handle = os.fdopen(fd, "rb")  # the WSGI server closes it
    wrapper = environ.get("wsgi.file_wrapper")
    return wrapper(handle, 256 * 1024) if wrapper else iter(lambda: handle.read(256 * 1024), b"")


class _Stream:
    """Iterate a storage stream in chunks and close it when the server is done."""

    def __init__(self, stream: t.BinaryIO) -> None:
        self.stream = stream

    def __iter__(self) -> t.Iterator[bytes]:
        while chunk := self.stream.read(256 * 1024):
            yield chunk

    def close(self) -> None:
        self.stream.close()
