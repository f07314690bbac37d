"""nmr: a private npm registry for organisations on GitHub."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask import Flask


def create_app(*args: t.Any, **kwargs: t.Any) -> Flask:
    """Build the WSGI application (see ``nmr.app.create_app``)."""
    from nmr.app import create_app as _create_app

    return _create_app(*args, **kwargs)
