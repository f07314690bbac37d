"""Operational endpoints: liveness (``/-/ping``), readiness (``/-/ready``) and ``/-/metrics``.

None of them asks for credentials. ``/-/ping`` touches no backend, so a load balancer or the
Docker ``HEALTHCHECK`` may call it every few seconds. ``/-/ready`` checks that metadata and
tarball storage answer now (use it to route traffic, not to restart the process).
``/-/metrics`` exists only with ``metrics.enabled = true``; restrict it at the proxy if its
numbers are private.
"""

from __future__ import annotations

import logging
import typing as t

from flask import Blueprint, Response, jsonify

from nmr.api.helpers import services
from nmr.errors import NotFound
from nmr.metrics import CONTENT_TYPE

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/-/ping")
def ping() -> Response:
    return jsonify({})


@bp.get("/-/ready")
def ready() -> Response:
    svc = services()
    checks: dict[str, t.Any] = {}
    failed: list[str] = []
    for part, backend in (("metadata", svc.metadata), ("storage", svc.storage)):
        try:
            backend.check()
        except Exception as exc:  # every failure means "not ready"; say which backend and why
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            checks[part] = {"ok": False, "error": message}
            failed.append(f"{part}: {message}")
            log.warning("readiness: %s is not ready: %s", part, message)
        else:
            checks[part] = {"ok": True}
    body: dict[str, t.Any] = {"ok": not failed, **checks}
    if failed:
        body["error"] = "not ready: " + "; ".join(failed)
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    if failed:
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/-/metrics")
def metrics() -> Response:
    svc = services()
    if not svc.config.get("metrics.enabled"):
        raise NotFound("metrics are off (metrics.enabled = false)")
    m = svc.metrics
    lookups = {result: m.value("auth_cache_requests_total", {"result": result}) for result in ("hit", "miss", "stale")}
    if sum(lookups.values()):
        m.set("auth_cache_hit_ratio", lookups["hit"] / sum(lookups.values()))
    response = Response(m.render(), content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
