"""The Docker files configure nmr with keys that exist: checked with the real config loader."""

from __future__ import annotations

import runpy

import pytest

from nmr.cli import gunicorn_options
from nmr.config import load_config
from tests.dockerfile import REPO_ROOT, dockerignore_patterns, parse_dockerfile


def test_dockerfile_environment_is_valid_configuration():
    env = {k: v for k, v in parse_dockerfile().env.items() if k.startswith("NMR_")}
    config = load_config(environ=env)
    assert config.get("metadata.leveldb.path") == "/data/db"
    assert config.get("storage.local.path") == "/data/storage"
    assert config.get("server.port") == 3000


def test_compose_file_configures_s3_storage_with_known_keys():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO_ROOT / "docker" / "docker-compose.yml").read_text())
    nmr = compose["services"]["nmr"]
    env = {k: str(v) for k, v in nmr["environment"].items()}
    config = load_config(environ=env)  # an unknown key or a wrong type would raise here
    assert config.get("storage.type") == "s3"
    s3 = config.get("storage.s3")
    assert s3["bucket"] == "npm" and s3["endpoint_url"] == "http://minio:9000" and s3["force_path_style"] is True
    assert s3["access_key_id"] == compose["services"]["minio"]["environment"]["MINIO_ROOT_USER"]
    assert s3["secret_access_key"] == compose["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    assert "nmr-data:/data" in nmr["volumes"]
    # Docker must wait longer than gunicorn's graceful shutdown before it kills.
    assert int(nmr["stop_grace_period"].rstrip("s")) > config.get("server.graceful_timeout")
    assert nmr["build"]["dockerfile"] == "docker/Dockerfile"


def test_dockerignore_keeps_what_pip_install_needs():
    patterns = dockerignore_patterns()
    for needed in ("nmr", "setup.cfg", "pyproject.toml", "README.md", "docker", "etc"):
        assert needed not in patterns
    assert ".git" in patterns and "data" in patterns


def test_gunicorn_conf_py_takes_the_settings_nmr_serve_uses(monkeypatch):
    monkeypatch.setenv("NMR_SERVER__THREADS", "5")
    monkeypatch.setenv("NMR_SERVER__GRACEFUL_TIMEOUT", "42")
    conf = runpy.run_path(str(REPO_ROOT / "docker" / "gunicorn.conf.py"))
    expected = gunicorn_options(load_config(), None)
    for key, value in expected.items():
        assert conf[key] == value, key
    assert conf["workers"] == 1 and conf["worker_class"] == "nmr.worker.NmrWorker" and conf["preload_app"] is False
    assert conf["logger_class"] == "nmr.worker.QuietAccessLogger"
    assert conf["threads"] == 5 and conf["graceful_timeout"] == 42


def test_worker_exit_closes_backends_only_when_no_request_is_running():
    from types import SimpleNamespace

    from nmr.cli import close_services

    closed: list[str] = []
    app = SimpleNamespace(extensions={"nmr": SimpleNamespace(close=lambda: closed.append("closed"))})
    close_services(None, SimpleNamespace(wsgi=app, nr_conns=2))
    assert closed == []
    close_services(None, SimpleNamespace(wsgi=app, nr_conns=0))
    assert closed == ["closed"]
    close_services(None, SimpleNamespace())  # a worker that never loaded the app
    assert closed == ["closed"]
