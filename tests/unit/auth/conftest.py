"""Fixtures for the auth backend tests: a fake clock, a responses mock of the GitHub API."""

from __future__ import annotations

import typing as t

import pytest
import responses

from nmr.auth.github import GitHubAuth
from tests.fakegithub import FakeClock, fake_github  # noqa: F401 - a fixture, re-exported


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rsps() -> t.Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def make_auth(clock: FakeClock) -> t.Iterator[t.Callable[..., GitHubAuth]]:
    made: list[GitHubAuth] = []

    def make(**kwargs: t.Any) -> GitHubAuth:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("api_url", "https://api.github.com")
        auth = GitHubAuth(**kwargs)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def auth(make_auth: t.Callable[..., GitHubAuth]) -> GitHubAuth:
    return make_auth()
