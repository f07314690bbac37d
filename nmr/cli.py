"""The ``nmr`` command: ``nmr serve`` (gunicorn) and ``nmr check-config``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import typing as t

from nmr.config import Config, ConfigError, load_config
from nmr.logs import configure_logging, logging_dict

SHM = "/dev/shm"  # noqa: S108 - gunicorn creates its heartbeat file there with mkstemp


def gunicorn_options(config: Config, bind: str | None) -> dict[str, t.Any]:
    """gunicorn settings for nmr; ``nmr serve`` and ``docker/gunicorn.conf.py`` both use them.

    * ``workers=1``, ``worker_class`` = ``nmr.worker.NmrWorker`` (gthread with less work per
      request), ``threads=server.threads``: LevelDB allows one process to open the database,
      so concurrency comes from threads in a single worker.
    * ``preload_app=False``: the app (and with it the database) is built in the worker after
      the fork; a preloaded app would open LevelDB in the master and hold its lock there.
    * ``timeout``: with gthread this is a heartbeat of the worker's event loop, which keeps
      beating while request threads run, so a long upload or download is never killed by it;
      it only replaces a worker whose loop is stuck. A stalled request body is cut by
      ``server.read_timeout`` instead (``nmr.observe``).
    * ``graceful_timeout``: on SIGTERM the worker stops accepting, finishes the requests in
      flight (a publish completes or, past the deadline, is killed before its metadata is
      written: storage first, metadata last), then exits.
    * ``accesslog=None`` and ``logger_class`` = ``nmr.worker.QuietAccessLogger``: nmr writes its
      own access log (``nmr.access``) with the GitHub login and no credentials;
      ``logconfig_dict`` gives gunicorn's own lines the same format.
    """
    return {
        "bind": bind or f"{config.get('server.host')}:{config.get('server.port')}",
        "workers": 1,
        "worker_class": "nmr.worker.NmrWorker",
        "logger_class": "nmr.worker.QuietAccessLogger",
        "threads": config.get("server.threads"),
        "timeout": config.get("server.timeout"),
        "graceful_timeout": config.get("server.graceful_timeout"),
        "keepalive": config.get("server.keepalive"),
        "preload_app": False,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": config.get("logging.level"),
        "logconfig_dict": logging_dict(config),
        "proc_name": "nmr",
        "worker_exit": close_services,
        # The worker's heartbeat is a file it touches every second. In a container /tmp may be
        # a slow overlay or read-only (docker run --read-only); /dev/shm is memory.
        "worker_tmp_dir": SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else None,
        # gunicorn >= 25 opens a control socket under $HOME; nmr does not use it, and in the
        # container $HOME is not meant to be written. Skipped on versions without the setting.
        "control_socket_disable": True,
    }


def close_services(server: t.Any, worker: t.Any) -> None:
    """gunicorn ``worker_exit`` hook: close the backends of the app this worker served.

    Skipped when requests are still running (``graceful_timeout`` ran out): closing LevelDB
    under a thread that is using it can crash the process mid-write, while leaving it open
    is safe (every write is synced; the kill that follows is what the publish order handles).
    """
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("nmr") if app is not None else None
    if services is None:
        return
    running = getattr(worker, "nr_conns", 0)
    if running:
        logging.getLogger("nmr").warning(
            "%d connection(s) still busy after server.graceful_timeout; exiting without closing the backends", running
        )
        return
    services.close()


def serve(config: Config, bind: str | None) -> None:
    from gunicorn.app.base import BaseApplication

    class NmrApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(config, bind).items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> t.Any:
            from nmr.app import create_app

            configure_logging(config)  # in the worker, after the fork
            return create_app(config)

    NmrApplication().run()


def storage_problem(config: Config) -> str | None:
    """Why tarball storage cannot be used (missing bucket, bad credentials...), or None."""
    from nmr.storage import make_storage

    try:
        storage = make_storage(config)
        try:
            storage.check()
        finally:
            storage.close()
    except Exception as exc:  # report every kind of backend failure the same way
        return f"tarball storage ({config.get('storage.type')}) is not usable: {exc}"
    return None


def check_config(config: Config) -> int:
    print(json.dumps(config.masked(), indent=2, sort_keys=True))
    problem = storage_problem(config)
    if problem:
        print(f"storage: NOT OK: {problem}", file=sys.stderr)
        return 1
    print("storage: ok", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nmr", description="Private npm registry for GitHub organisations")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the registry with gunicorn")
    p_serve.add_argument("--config", help="TOML configuration file (default: $NMR_CONFIG)")
    p_serve.add_argument("--bind", help="HOST:PORT to listen on (default: server.host:server.port)")
    p_check = sub.add_parser("check-config", help="print the effective configuration, secrets masked")
    p_check.add_argument("--config", help="TOML configuration file (default: $NMR_CONFIG)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"nmr: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        problem = storage_problem(config)
        if problem:
            print(f"nmr: cannot start: {problem}", file=sys.stderr)
            return 2
        serve(config, args.bind)
        return 0
    return check_config(config)


if __name__ == "__main__":
    sys.exit(main())
