"""Registry-wide endpoints: ping, search, audit, stars."""

from __future__ import annotations

import datetime as dt
import typing as t

from flask import Blueprint, Response, jsonify, request

from nmr.api.helpers import base_url, body_bytes, identity, services
from nmr.errors import BadRequest

bp = Blueprint("misc", __name__)


@bp.get("/-/ping")
def ping() -> Response:
    return jsonify({})


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be a whole number") from None
    return max(low, min(high, value))


@bp.get("/-/v1/search")
def search() -> Response:
    text = request.args.get("text", "")
    size = _int_arg("size", 20, 1, 250)
    offset = _int_arg("from", 0, 0, 1_000_000)
    total, found = services().registry.search(identity(), text, size, offset)
    base = base_url()
    objects: list[dict[str, t.Any]] = []
    for summary in found:
        name = summary["name"]
        package = {
            "name": name,
            "scope": name.split("/", 1)[0].lstrip("@") if name.startswith("@") else "unscoped",
            "version": summary["version"],
            "description": summary["description"],
            "keywords": summary["keywords"],
            "date": summary["date"],
            "links": {"npm": f"{base}/{name}"},
            "publisher": summary["publisher"],
            "maintainers": summary["maintainers"],
        }
        score = {"final": 1.0, "detail": {"quality": 1.0, "popularity": 1.0, "maintenance": 1.0}}
        objects.append({"package": package, "score": score, "searchScore": 1.0})
    now = dt.datetime.now(dt.UTC).strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")
    return jsonify({"objects": objects, "total": total, "time": now})


EMPTY_NPM6_REPORT = {
    "actions": [],
    "advisories": {},
    "muted": [],
    "metadata": {
        "vulnerabilities": {"info": 0, "low": 0, "moderate": 0, "high": 0, "critical": 0},
        "dependencies": 0,
        "devDependencies": 0,
        "optionalDependencies": 0,
        "totalDependencies": 0,
    },
}


@bp.post("/-/npm/v1/security/advisories/bulk")
def audit_bulk() -> Response:
    body_bytes()  # read (and, if gzip, check) the body; hosted packages have no advisories
    upstream = services().upstream
    if upstream is not None:
        forwarded: Response = upstream.audit(request.path)
        return forwarded
    return jsonify({})


@bp.post("/-/npm/v1/security/audits")
@bp.post("/-/npm/v1/security/audits/quick")
def audit_quick() -> Response:
    body_bytes()
    upstream = services().upstream
    if upstream is not None:
        forwarded: Response = upstream.audit(request.path)
        return forwarded
    return jsonify(EMPTY_NPM6_REPORT)


@bp.get("/-/_view/starredByUser")
def starred_by_user() -> Response:
    return jsonify({"rows": []})
