"""WSGI entry point: ``gunicorn nmr.wsgi:app`` (configuration from ``NMR_CONFIG`` and ``NMR_*``)."""

from nmr.app import create_app

app = create_app()
