"""Fixtures for end-to-end tests: ``start_nmr`` starts a real gunicorn-served nmr."""

from __future__ import annotations

import shutil
import typing as t
from pathlib import Path

import pytest

from tests.e2e.harness import NmrServer, Npm

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _npm_on_path() -> None:
    if shutil.which("npm") is None:
        pytest.fail("the npm CLI is needed for end-to-end tests (Node.js with npm)")


@pytest.fixture
def start_nmr(tmp_path: Path) -> t.Iterator[t.Callable[..., NmrServer]]:
    servers: list[NmrServer] = []

    def factory(
        sections: dict[str, t.Any] | None = None,
        name: str = "nmr",
        env: dict[str, str] | None = None,
    ) -> NmrServer:
        workdir = tmp_path / f"{name}-{len(servers)}"
        workdir.mkdir()
        server = NmrServer(workdir, sections or {"auth": {"type": "none"}}, env=env)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def make_npm(tmp_path: Path) -> t.Callable[..., Npm]:
    count = 0

    def factory(registry: str, token: str | None = "e2e-token", scope: str = "@acme") -> Npm:
        nonlocal count
        count += 1
        return Npm(tmp_path / f"npm-user-{count}", registry, token, scope)

    return factory
