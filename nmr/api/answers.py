"""Answers to the two hot reads (packument, tarball) as plain data, without Flask.

Both the Flask views and the WSGI fast path (``nmr.api.fastpath``) build their responses from
these functions, so the two paths cannot drift apart in headers, validators or bodies.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import typing as t
from datetime import datetime

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

if t.TYPE_CHECKING:
    from nmr.app import Services
    from nmr.auth import Identity

ABBREVIATED = "application/vnd.npm.install-v1+json"
PACKUMENT_CACHE_CONTROL = "private, no-cache"
TARBALL_CACHE_CONTROL = "private, max-age=31536000, immutable"


@dataclasses.dataclass
class Answer:
    """Status, headers and one of: bytes, a file to send, or a stream."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    path: str | None = None  # a local file to send (sendfile)
    size: int = -1  # the file's size in bytes, when ``path`` is set
    stream: t.BinaryIO | None = None


def error_answer(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """The JSON error every path answers with: ``{"error": "..."}``."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode() + b"\n"
    out = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Content-Length", str(len(body)))]
    out += list((headers or {}).items())
    return Answer(status, out, body)


@functools.lru_cache(maxsize=256)
def wants_abbreviated(accept: str | None) -> bool:
    """True when Accept explicitly prefers the install-v1 ("corgi") form over plain JSON."""
    if not accept:
        return False
    corgi = json_q = None
    for value, quality in parse_accept_header(accept, MIMEAccept):
        if value == ABBREVIATED:
            corgi = quality
        elif value == "application/json":
            json_q = quality
    return bool(corgi) and (json_q is None or corgi >= json_q)  # type: ignore[operator]


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str | None) -> bool:
    return bool(accept_encoding) and parse_accept_header(accept_encoding)["gzip"] > 0


def etag_matches(header: str, etag: str) -> bool:
    bare = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


@functools.lru_cache(maxsize=1024)
def http_date(iso: str) -> str:
    return email.utils.format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)


def _not_modified_since(header: str | None, modified: str) -> bool:
    if not header or not modified:
        return False
    try:
        since = email.utils.parsedate_to_datetime(header)
        changed = datetime.fromisoformat(modified.replace("Z", "+00:00")).replace(microsecond=0)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and changed <= since


def packument_answer(
    services: Services,
    identity: Identity,
    name: str,
    *,
    base_url: str,
    accept: str | None,
    accept_encoding: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> Answer:
    abbreviated = wants_abbreviated(accept)
    inm = if_none_match
    result = services.registry.packument(
        identity,
        name,
        abbreviated=abbreviated,
        base_url=base_url,
        if_none_match=(lambda etag: etag_matches(inm, etag)) if inm else None,
    )
    common = [
        ("Content-Type", ABBREVIATED if abbreviated else "application/json"),
        ("Cache-Control", PACKUMENT_CACHE_CONTROL),
        ("Vary", "Accept, Accept-Encoding"),
    ]
    if isinstance(result, str):
        return Answer(304, [*common, ("ETag", result)])
    if not inm and _not_modified_since(if_modified_since, result.modified):
        return Answer(304, [*common, ("ETag", result.etag)])
    headers = [*common, ("ETag", result.etag)]
    if result.modified:
        headers.append(("Last-Modified", http_date(result.modified)))
    if result.gzipped is not None and accepts_gzip(accept_encoding):
        headers.append(("Content-Encoding", "gzip"))
        body = result.gzipped
    else:
        body = result.body
    headers.append(("Content-Length", str(len(body))))
    return Answer(200, headers, body)


def tarball_answer(
    services: Services, identity: Identity, name: str, filename: str, *, if_none_match: str | None
) -> Answer:
    entry = services.registry.tarball(identity, name, filename)
    return stored_tarball_answer(services, entry.key, entry.size, if_none_match=if_none_match)


def stored_tarball_answer(services: Services, key: str, size: int, *, if_none_match: str | None) -> Answer:
    """Serve a stored tarball (hosted, or forwarded and cached): redirect, sendfile or stream."""
    url = services.storage.redirect_url(key)
    if url:
        return Answer(302, [("Location", url), ("Cache-Control", "private, no-store"), ("Content-Length", "0")])
    etag = '"' + key.rsplit("-", 1)[-1].removesuffix(".tgz") + '"'
    headers = [("ETag", etag), ("Cache-Control", TARBALL_CACHE_CONTROL)]
    if if_none_match and etag_matches(if_none_match, etag):
        return Answer(304, headers)
    headers += [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    path = services.storage.local_path(key)
    if path is not None:
        return Answer(200, headers, path=path, size=size)
    return Answer(200, headers, stream=services.storage.open(key))
