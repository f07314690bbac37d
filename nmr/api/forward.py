"""Views for names this registry does not host: proxy from the upstream cache, redirect, or 404.

The work is done by ``nmr.upstream.UpstreamRegistry``; these functions only shape answers the
way the hosted views do (same headers, same ETag scheme, same tarball serving) and add a
``Warning`` when the answer comes from a cache upstream could not refresh.
"""

from __future__ import annotations

import contextlib
import gzip
import typing as t

from flask import Blueprint, Response, jsonify, redirect, request

from nmr import packument as pm
from nmr.api.answers import (
    ABBREVIATED,
    PACKUMENT_CACHE_CONTROL,
    Answer,
    accepts_gzip,
    etag_matches,
    http_date,
    stored_tarball_answer,
    wants_abbreviated,
)
from nmr.api.helpers import base_url, body_bytes, identity, raw_path, services
from nmr.api.packages import json_bytes_response, to_response
from nmr.errors import BadRequest, NotFound, Unavailable
from nmr.names import split_package_path
from nmr.service import GZIP_MIN_SIZE, RenderCache, Rendered, final_etag
from nmr.upstream import STALE_WARNING

if t.TYPE_CHECKING:
    from nmr.names import PackagePath
    from nmr.upstream import UpstreamRegistry

bp = Blueprint("forward", __name__)

#: Materialised forwarded packuments, apart from the hosted ones (keys could otherwise meet).
_renders = RenderCache(max_bytes=128 * 1024**2)


def _upstream(name: str) -> UpstreamRegistry:
    svc = services()
    if svc.upstream is None:
        raise NotFound(
            f"{name} is not hosted here ({svc.registry.hosted_scopes_text()} are) and forwarding "
            "to an upstream registry is off"
        )
    # A token the auth backend rejects is a 401 here too, as on hosted names; but forwarded
    # packages are public, so an outage of the auth backend must not stop them.
    with contextlib.suppress(Unavailable):
        identity()
    upstream: UpstreamRegistry = svc.upstream
    return upstream


def _redirect_upstream(upstream: UpstreamRegistry) -> Response:
    target = upstream.url_for(raw_path(), request.query_string.decode("latin-1"))
    response: Response = redirect(target, 302)  # type: ignore[assignment]
    response.headers["Cache-Control"] = "no-store"
    return response


def _mark_stale(response: Response, stale: bool) -> Response:
    if stale:
        response.headers["Warning"] = STALE_WARNING
    return response


def forwarded_route(pp: PackagePath) -> Response:
    """Reads of a forwarded name: packument, one version, or a tarball."""
    upstream = _upstream(pp.name)
    if request.method not in ("GET", "HEAD"):
        raise NotFound(f"no such route for {pp.name}: {request.method} {request.path}")
    if upstream.mode == "redirect":
        return _redirect_upstream(upstream)
    rest = pp.rest
    if not rest:
        return _packument_response(upstream, pp.name)
    if len(rest) == 1 and rest[0] != "-":
        body, stale = upstream.manifest(pp.name, rest[0])
        return _mark_stale(json_bytes_response(pm.materialize(body, base_url())), stale)
    if len(rest) == 2 and rest[0] == "-":
        tarball = upstream.tarball(pp.name, rest[1])
        inm = request.headers.get("If-None-Match")
        answer = stored_tarball_answer(services(), tarball.key, tarball.size, if_none_match=inm)
        return _mark_stale(to_response(answer), tarball.stale)
    raise NotFound(f"no such route for {pp.name}: {request.method} {request.path}")


def forwarded_dist_tags(pp: PackagePath) -> Response:
    """``GET /-/package/<forwarded name>/dist-tags``."""
    upstream = _upstream(pp.name)
    if upstream.mode == "redirect":
        return _redirect_upstream(upstream)
    tags, stale = upstream.dist_tags(pp.name)
    response = jsonify(tags)
    response.headers["Cache-Control"] = "private, no-cache"
    return _mark_stale(response, stale)


def _packument_response(upstream: UpstreamRegistry, name: str) -> Response:
    """The same headers and validators as a hosted packument (``nmr.api.answers``), plus Warning."""
    abbreviated = wants_abbreviated(request.headers.get("Accept"))
    served = upstream.packument(name, abbreviated=abbreviated)
    template_etag = served.head.etag_abbreviated if abbreviated else served.head.etag_full
    base = base_url()
    etag = final_etag(template_etag, base)
    headers = [
        ("Content-Type", ABBREVIATED if abbreviated else "application/json"),
        ("Cache-Control", PACKUMENT_CACHE_CONTROL),
        ("Vary", "Accept, Accept-Encoding"),
        ("ETag", etag),
    ]
    if served.stale:
        headers.append(("Warning", STALE_WARNING))
    inm = request.headers.get("If-None-Match")
    if inm and etag_matches(inm, etag):
        return to_response(Answer(304, headers))
    key = ("\0upstream\0" + name, abbreviated, template_etag, base)
    rendered = _renders.get(key)
    if rendered is None:
        body = pm.materialize(served.body, base)
        gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= GZIP_MIN_SIZE else None
        rendered = Rendered(body=body, gzipped=gzipped, etag=etag, modified=served.head.modified)
        _renders.put(key, rendered)
    if rendered.modified:
        with contextlib.suppress(ValueError):  # upstream's own time format; the header is optional
            headers.append(("Last-Modified", http_date(rendered.modified)))
    if rendered.gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding")):
        headers.append(("Content-Encoding", "gzip"))
        body = rendered.gzipped
    else:
        body = rendered.body
    headers.append(("Content-Length", str(len(body))))
    return to_response(Answer(200, headers, body))


def audit_response(empty: dict[str, t.Any]) -> Response:
    """An audit endpoint: upstream's answer for the non-hosted part of the body in proxy mode, else ``empty``.

    Hosted names are stripped before anything leaves (``UpstreamRegistry.audit``); when upstream
    is off, in redirect mode (a POST cannot be redirected usefully), fails or has nothing to
    say, the answer is the empty report: hosted packages have no advisories.
    """
    body = body_bytes()  # read (and, if gzip, inflate and check) the body first in every mode
    upstream = services().upstream
    if upstream is not None and upstream.mode == "proxy":
        answer = upstream.audit(request.path, body)
        if answer is not None:
            return Response(answer, mimetype="application/json")
    return jsonify(empty)


@bp.get("/-/npm/v1/keys")
def signing_keys() -> Response:
    """Upstream's registry signing keys (``npm audit signatures`` asks nmr for them)."""
    upstream = services().upstream
    if upstream is None:
        raise NotFound("this registry has no signing keys")
    if upstream.mode == "redirect":
        return _redirect_upstream(upstream)
    keys = upstream.signing_keys()
    if keys is None:
        raise NotFound("this registry has no signing keys")
    response = Response(keys, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/-/npm/v1/attestations/<path:_spec>")
def attestations(_spec: str) -> Response:
    """Provenance attestations of a forwarded ``name@version``; hosted packages have none."""
    spec = raw_path().removeprefix("/-/npm/v1/attestations/")
    at = spec.rfind("@")
    if at <= 0:
        raise BadRequest("attestations are asked for as /-/npm/v1/attestations/<name>@<version>")
    pp = split_package_path("/" + spec[:at])
    version = spec[at + 1 :]
    if pp.rest or services().registry.is_hosted(pp.name):
        raise NotFound(f"no attestations for {pp.name}@{version}")
    upstream = _upstream(pp.name)
    if upstream.mode == "redirect":
        return _redirect_upstream(upstream)
    response = Response(upstream.attestations(pp.name, version), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
