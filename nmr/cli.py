"""The ``nmr`` command: ``nmr serve`` (gunicorn) and ``nmr check-config``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing as t

from nmr.config import Config, ConfigError, load_config


def configure_logging(config: Config) -> None:
    logging.basicConfig(
        level=getattr(logging, config.get("logging.level").upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def gunicorn_options(config: Config, bind: str | None) -> dict[str, t.Any]:
    """gunicorn settings. One worker process: LevelDB allows one process; threads give concurrency."""
    return {
        "bind": bind or f"{config.get('server.host')}:{config.get('server.port')}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": config.get("server.threads"),
        "timeout": config.get("server.timeout"),
        "graceful_timeout": config.get("server.graceful_timeout"),
        "keepalive": config.get("server.keepalive"),
        "preload_app": False,  # the database opens in the worker, after the fork
        "accesslog": None,
        "errorlog": "-",
        "loglevel": config.get("logging.level"),
        "proc_name": "nmr",
    }


def serve(config: Config, bind: str | None) -> None:
    from gunicorn.app.base import BaseApplication

    class NmrApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(config, bind).items():
                self.cfg.set(key, value)

        def load(self) -> t.Any:
            from nmr.app import create_app

            configure_logging(config)
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
