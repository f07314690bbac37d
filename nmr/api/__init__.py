"""The HTTP API: blueprints, request helpers and JSON error handlers.

Views are thin: they parse the request, call ``nmr.service.Registry`` and shape the answer.
Package names are taken from the raw request path (``nmr.names.split_package_path``).
"""

from __future__ import annotations

import typing as t

from flask import Flask

from nmr.api import errors, misc, packages, users


def register_blueprints(app: Flask) -> None:
    errors.register_error_handlers(app)
    app.register_blueprint(misc.bp)
    app.register_blueprint(users.bp)
    # Last: its catch-all routes match any path the others did not.
    app.register_blueprint(packages.bp)


__all__: t.Sequence[str] = ["register_blueprints"]
