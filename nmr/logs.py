"""Logging set-up: ``logging.level`` and ``logging.format`` (``plain`` or ``json``, one line per event).

``configure_logging`` runs in the process that serves requests (the gunicorn worker, after
the fork, or whoever imports ``nmr.wsgi``), replaces the root handlers, and routes
gunicorn's own error log through the same handler so every line has one format.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import typing as t

if t.TYPE_CHECKING:
    from nmr.config import Config

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the record's ``fields``.

    A record may carry ``extra={"fields": {...}}`` (the access log does): those keys are merged
    into the object, so a log pipeline can filter on ``status`` or ``route`` without parsing.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC)
        out: dict[str, t.Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter(PLAIN_FORMAT)


def logging_dict(config: Config) -> dict[str, t.Any]:
    """A ``logging.config.dictConfig`` mapping; gunicorn takes it as ``logconfig_dict`` too.

    One stderr handler on the root logger; gunicorn's error log propagates to it (so the
    master's lines share the format) and gunicorn's access log is off: nmr writes its own
    (``nmr.access``), which knows the GitHub login and never prints credentials.
    """
    level = config.get("logging.level").upper()
    formatter: dict[str, t.Any] = (
        {"()": "nmr.logs.JsonFormatter"} if config.get("logging.format") == "json" else {"format": PLAIN_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"nmr": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "nmr", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def configure_logging(config: Config) -> None:
    """Send every log record (nmr's and gunicorn's) to stderr in the configured format."""
    logging.config.dictConfig(logging_dict(config))
    # The access log writes a record per request. Neither format prints the caller's source
    # line, thread or process, so skip collecting them (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
