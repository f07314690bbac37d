"""The application factory: builds the backends once and keeps them on ``app.extensions["nmr"]``."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import typing as t
from urllib.parse import urlsplit, urlunsplit

from flask import Flask

from nmr import __version__
from nmr.auth import Authenticator, make_authenticator
from nmr.config import Config, load_config, parse_size
from nmr.metadata import MetadataStore, make_metadata_store
from nmr.metrics import NULL_METRICS, Metrics
from nmr.observe import RequestObserver
from nmr.service import Registry
from nmr.storage import MeteredStorage, TarballStorage, make_storage
from nmr.upstream import UpstreamRegistry, make_upstream

if t.TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("nmr")


@dataclasses.dataclass
class Services:
    """Everything a view may use, built once per process."""

    config: Config
    registry: Registry
    metadata: MetadataStore
    storage: TarballStorage
    auth: Authenticator
    metrics: Metrics = NULL_METRICS  # the app's registry; NULL_METRICS when metrics.enabled is false
    upstream: UpstreamRegistry | None = None  # None when forwarding is off

    def close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        for part in (self.auth, self.storage, self.metadata):
            part.close()


class PrefixMiddleware:
    """Serve under the path of ``server.public_url`` (``https://host/npm/``) when a proxy keeps it."""

    def __init__(self, app: WSGIApplication, prefix: str) -> None:
        self.app, self.prefix = app, prefix.rstrip("/")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        return self.app(environ, start_response)


def create_app(config: Config | None = None, overrides: dict[str, t.Any] | None = None) -> Flask:
    """Build the Flask app from ``config`` (default: ``load_config()`` with ``overrides``)."""
    if config is None:
        config = load_config(overrides=overrides)
    app = Flask("nmr")
    app.config["MAX_CONTENT_LENGTH"] = parse_size(config.get("settings.max_body_size"))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]

    metrics = Metrics() if config.get("metrics.enabled") else NULL_METRICS
    metrics.set("process_start_time_seconds", time.time())
    metadata = make_metadata_store(config)
    backend_storage = make_storage(config)
    storage: TarballStorage = MeteredStorage(backend_storage)
    auth = make_authenticator(config)
    # Backends report through the ``metrics`` attribute their ABC declares (see nmr.metrics).
    for backend in (metadata, backend_storage, storage, auth):
        backend.metrics = metrics
    registry = Registry(config, metadata, storage, auth)
    upstream = make_upstream(config, metadata, storage, registry.is_hosted)
    if upstream is not None:
        upstream.metrics = metrics
    services = Services(
        config=config,
        registry=registry,
        metadata=metadata,
        storage=storage,
        auth=auth,
        metrics=metrics,
        upstream=upstream,
    )
    app.extensions["nmr"] = services

    from nmr.api import register_blueprints

    register_blueprints(app)

    from nmr.api.fastpath import FastPath

    # Wrapped inside out: the observer (outermost) logs and meters every request, fast path included.
    app.wsgi_app = FastPath(app.wsgi_app, services)  # type: ignore[method-assign]
    app.wsgi_app = RequestObserver(  # type: ignore[method-assign]
        app.wsgi_app, metrics, read_timeout=config.get("server.read_timeout")
    )
    prefix = urlsplit(config.get("server.public_url")).path.rstrip("/")
    if prefix:
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, prefix)  # type: ignore[method-assign]
    log_startup(config, services)
    return app


def safe_url(url: str) -> str:
    """``url`` without user-info, query or fragment: what may be printed of a configured URL."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def describe_backends(config: Config, services: Services) -> dict[str, str]:
    """What this process serves with, in words an operator checks at a glance (no secrets)."""
    storage_kind = config.get("storage.type")
    if storage_kind == "s3":
        s3 = config.get("storage.s3")
        where = f"bucket={s3['bucket']!r} prefix={s3['prefix']!r} endpoint={safe_url(s3['endpoint_url']) or 'AWS'}"
        storage_text = f"s3 ({where})"
    else:
        storage_text = f"local ({os.path.abspath(config.get('storage.local.path'))})"
    mode = config.get("upstream.mode")
    if services.upstream is not None:
        upstream_text = f"{mode} {safe_url(services.upstream.url)}"
    elif mode == "off":
        upstream_text = "off (names outside the hosted scopes answer 404)"
    else:
        upstream_text = "off: no upstream.url and no registry in this machine's npm configuration"
    auth_kind = config.get("auth.type")
    auth_text = f"github ({safe_url(config.get('auth.github.api_url'))})" if auth_kind == "github" else auth_kind
    return {
        "metadata": f"{config.get('metadata.type')} ({os.path.abspath(config.get('metadata.leveldb.path'))})",
        "storage": storage_text,
        "scopes": services.registry.hosted_scopes_text(),
        "upstream": upstream_text,
        "auth": auth_text,
        "metrics": "on at /-/metrics" if config.get("metrics.enabled") else "off",
    }


def log_startup(config: Config, services: Services) -> None:
    described = describe_backends(config, services)
    log.info(
        "nmr %s ready: %s",
        __version__,
        "; ".join(f"{key}={value}" for key, value in described.items()),
        extra={"fields": described},
    )
    if services.auth.startup_warning:
        log.warning("!" * 20 + " %s " + "!" * 20, services.auth.startup_warning)
