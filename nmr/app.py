"""The application factory: builds the backends once and keeps them on ``app.extensions["nmr"]``."""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from urllib.parse import urlsplit

from flask import Flask

from nmr.auth import Authenticator, make_authenticator
from nmr.config import Config, load_config, parse_size
from nmr.metadata import MetadataStore, make_metadata_store
from nmr.service import Registry
from nmr.storage import TarballStorage, make_storage

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
    upstream: t.Any = None  # nmr.upstream.Upstream when forwarding is on

    def close(self) -> None:
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

    metadata = make_metadata_store(config)
    storage = make_storage(config)
    auth = make_authenticator(config)
    registry = Registry(config, metadata, storage, auth)
    services = Services(config=config, registry=registry, metadata=metadata, storage=storage, auth=auth)
    app.extensions["nmr"] = services

    from nmr.api import register_blueprints

    register_blueprints(app)

    from nmr.api.fastpath import FastPath

    app.wsgi_app = FastPath(app.wsgi_app, services)  # type: ignore[method-assign]
    prefix = urlsplit(config.get("server.public_url")).path.rstrip("/")
    if prefix:
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, prefix)  # type: ignore[method-assign]
    if auth.startup_warning:
        log.warning("!" * 20 + " %s " + "!" * 20, auth.startup_warning)
    return app
