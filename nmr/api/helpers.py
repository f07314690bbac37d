"""Request helpers shared by the views: services, identity, raw path, JSON body, base URL."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import typing as t
import zlib

from flask import current_app, g, request

from nmr.errors import BadRequest, PayloadTooLarge, Unauthorized

if t.TYPE_CHECKING:
    from nmr.app import Services
    from nmr.auth import Identity


def services() -> Services:
    found: Services = current_app.extensions["nmr"]
    return found


def parse_authorization(header: str | None) -> str | None:
    """The token from ``Bearer <t>``, or the password of ``Basic base64(user:<t>)``."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic" and value:
        try:
            user_pass = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthorized("malformed Basic credentials") from None
        _user, sep, password = user_pass.partition(":")
        if sep and password:
            return password
    raise Unauthorized("unsupported Authorization header: send 'Bearer <GitHub token>'")


def credentials() -> str | None:
    return parse_authorization(request.headers.get("Authorization"))


def identity() -> Identity:
    """The caller, identified once per request."""
    if "identity" not in g:
        g.identity = services().registry.identify(credentials())
    found: Identity = g.identity
    return found


def raw_path() -> str:
    """The request path still percent-encoded, without the query and the app's mount prefix."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        from urllib.parse import quote

        return quote(request.path, safe="/@:")
    path = raw.split("?", 1)[0]
    if "://" in path:  # absolute-form request target
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    script = request.script_root
    if script and path.startswith(script):
        path = path[len(script) :]
    return path


def base_url() -> str:
    configured: str = services().config.get("server.public_url")
    if configured:
        return configured.rstrip("/")
    return request.url_root.rstrip("/")


MAX_INFLATED = 64 * 1024 * 1024


def body_bytes() -> bytes:
    data = request.get_data(cache=True)
    if request.headers.get("Content-Encoding", "").lower() == "gzip" and data:
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(data, MAX_INFLATED)
            if inflater.unconsumed_tail:
                raise PayloadTooLarge("the gzip request body inflates past 64 MiB")
        except (zlib.error, gzip.BadGzipFile):
            raise BadRequest("the request body is not valid gzip") from None
    return data


def json_body() -> t.Any:
    data = body_bytes()
    if not data:
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None


def json_object() -> dict[str, t.Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body
