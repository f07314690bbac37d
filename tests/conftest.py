"""Shared fixtures: configuration, app and client with the embedded backends, test data."""

from __future__ import annotations

import os
import typing as t

import pytest

from nmr.config import Config, load_config


@pytest.fixture(autouse=True)
def _clean_nmr_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NMR_* variable of the developer's shell may change a test."""
    for key in list(os.environ):
        if key.startswith("NMR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def make_config(tmp_path: t.Any) -> t.Callable[..., Config]:
    def factory(**sections: t.Any) -> Config:
        overrides: dict[str, t.Any] = {
            "auth": {"type": "none"},
            "metadata": {"leveldb": {"path": str(tmp_path / "db")}},
            "storage": {"local": {"path": str(tmp_path / "storage")}},
        }
        for section, values in sections.items():
            merged = dict(overrides.get(section, {}))
            merged.update(values)
            overrides[section] = merged
        return load_config(environ={}, overrides=overrides)

    return factory


@pytest.fixture
def config(make_config: t.Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def app(config: Config) -> t.Iterator[t.Any]:
    from nmr.app import create_app

    application = create_app(config)
    yield application
    application.extensions["nmr"].close()


@pytest.fixture
def client(app: t.Any) -> t.Any:
    return app.test_client()
