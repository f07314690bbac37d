"""Package routes: packuments, versions, tarballs, publish and the overloaded PUT/DELETE, dist-tags.

Flask only routes ``/-/package/…`` and the catch-all here; the package name and the segments
after it come from the raw path (``split_package_path``), so every spelling of a scoped name
(``@s%2fn``, ``@s%2Fn``, ``@s/n``, ``%40s%2fn``) reaches the same code.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint, Response, jsonify, request
from werkzeug.wsgi import wrap_file

from nmr.api.answers import PACKUMENT_CACHE_CONTROL, Answer, packument_answer, tarball_answer
from nmr.api.helpers import base_url, identity, json_body, json_object, raw_path, services
from nmr.errors import BadRequest, NotFound, StorageNotFound
from nmr.names import PackagePath, split_package_path, validate_name

bp = Blueprint("packages", __name__)

_WRITE_METHODS = ("PUT", "POST", "DELETE")


def to_response(answer: Answer) -> Response:
    """An ``Answer`` as a Flask response (files go out through sendfile when the server can)."""
    if answer.path is not None:
        try:
            handle = open(answer.path, "rb")  # noqa: SIM115 - the WSGI server closes it
        except FileNotFoundError:
            raise StorageNotFound(answer.path) from None
        body: t.Any = wrap_file(request.environ, handle)
        response = Response(body, status=answer.status, direct_passthrough=True)
    elif answer.stream is not None:
        response = Response(_iter_stream(answer.stream), status=answer.status, direct_passthrough=True)
    else:
        response = Response(answer.body, status=answer.status)
    response.headers.clear()
    for key, value in answer.headers:
        response.headers[key] = value
    return response


def packument_response(name: str) -> Response:
    headers = request.headers
    return to_response(
        packument_answer(
            services(),
            identity(),
            name,
            base_url=base_url(),
            accept=headers.get("Accept"),
            accept_encoding=headers.get("Accept-Encoding"),
            if_none_match=headers.get("If-None-Match"),
            if_modified_since=headers.get("If-Modified-Since"),
        )
    )


def json_bytes_response(body: bytes, status: int = 200, *, no_store: bool = False) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache, no-store" if no_store else PACKUMENT_CACHE_CONTROL
    return response


def tarball_response(name: str, filename: str) -> Response:
    answer = tarball_answer(services(), identity(), name, filename, if_none_match=request.headers.get("If-None-Match"))
    return to_response(answer)


def _iter_stream(stream: t.BinaryIO) -> t.Iterator[bytes]:
    try:
        while chunk := stream.read(256 * 1024):
            yield chunk
    finally:
        stream.close()


def ok(status: int = 200, **extra: t.Any) -> Response:
    response = jsonify({"ok": True, **extra})
    response.status_code = status
    return response


def hosted_route(pp: PackagePath) -> Response:
    """Dispatch a request on a hosted package by method and the segments after the name."""
    registry = services().registry
    name, rest, method = pp.name, pp.rest, request.method
    validate_name(name)
    if method in ("GET", "HEAD"):
        if not rest:
            if request.args.get("write") == "true":
                return json_bytes_response(registry.write_document(identity(), name, base_url()), no_store=True)
            return packument_response(name)
        if len(rest) == 1 and rest[0] != "-":
            return json_bytes_response(registry.manifest(identity(), name, rest[0], base_url()))
        if len(rest) == 2 and rest[0] == "-":
            return tarball_response(name, rest[1])
        if len(rest) == 3 and rest[0] == "-" and rest[1].startswith("@"):
            return tarball_response(name, rest[2])  # ".../-/@scope/name-1.0.0.tgz", as npm publish bodies spell it
    elif method == "PUT":
        if not rest:
            status, payload = registry.put_package(identity(), name, json_object())
            response = jsonify(payload)
            response.status_code = status
            return response
        if len(rest) == 2 and rest[0] == "-rev":
            return ok(**registry.put_revision(identity(), name, rest[1], json_object()))
    elif method == "DELETE":
        if len(rest) == 2 and rest[0] == "-rev":
            registry.unpublish_package(identity(), name, rest[1])
            return ok()
        if len(rest) == 4 and rest[0] == "-" and rest[2] == "-rev":
            registry.delete_tarball(identity(), name, rest[1])
            return ok()
    raise NotFound(f"no such route for {name}: {method} {request.path}")


def forwarded_route(pp: PackagePath) -> Response:
    """A name this registry does not host: forwarded upstream, or refused for writes."""
    svc = services()
    if request.method in _WRITE_METHODS:
        svc.registry.require_hosted_write(pp.name)
    if svc.upstream is None:
        raise NotFound(
            f"{pp.name} is not hosted here ({svc.registry.hosted_scopes_text()} are) and forwarding "
            "to an upstream registry is off"
        )
    response: Response = svc.upstream.handle(pp)
    return response


@bp.route("/-/package/<path:_any>", methods=["GET", "HEAD", "PUT", "POST", "DELETE"])
def package_settings(_any: str) -> Response:
    pp = split_package_path(raw_path().removeprefix("/-/package"), legacy=True)
    registry = services().registry
    if not registry.is_hosted(pp.name):
        if request.method == "GET" and pp.rest == ("dist-tags",) and services().upstream is not None:
            return forwarded_route(pp)
        registry.require_hosted_write(pp.name)
    validate_name(pp.name)
    rest = pp.rest
    if rest == ("dist-tags",) and request.method in ("GET", "HEAD"):
        response = jsonify(registry.dist_tags(identity(), pp.name))
        response.headers["Cache-Control"] = PACKUMENT_CACHE_CONTROL
        return response
    if len(rest) == 2 and rest[0] == "dist-tags":
        tag = rest[1]
        if request.method in ("PUT", "POST"):
            version = json_body()
            if not isinstance(version, str):
                raise BadRequest('the body of a dist-tag add is a JSON string: the version, e.g. "1.2.3"')
            registry.set_dist_tag(identity(), pp.name, tag, version)
            return ok(201)
        if request.method == "DELETE":
            registry.remove_dist_tag(identity(), pp.name, tag)
            return ok()
    raise NotFound("not supported by this registry")


@bp.route("/<path:_any>", methods=["GET", "HEAD", "PUT", "POST", "DELETE"])
def package(_any: str) -> Response:
    path = raw_path()
    if path.startswith("/-/"):
        raise NotFound("not supported by this registry")
    pp = split_package_path(path, legacy=True)
    if services().registry.is_hosted(pp.name):
        return hosted_route(pp)
    return forwarded_route(pp)
