"""parse_repository: every spelling npm accepts lands on one Repository; the rest is None."""

from __future__ import annotations

import pytest

from nmr.auth import Repository
from nmr.auth.repository import RepositoryError, check_repository, parse_repository, web_host

ACME = Repository("acme", "widgets")


@pytest.mark.parametrize(
    "field",
    [
        "acme/widgets",
        "acme/widgets#v1.2.0",
        "github:acme/widgets",
        "GitHub:acme/widgets",
        "github:acme/widgets#main",
        "git+https://github.com/acme/widgets.git",
        "git+https://github.com/acme/widgets",
        "https://github.com/acme/widgets",
        "https://github.com/acme/widgets.git",
        "https://github.com/acme/widgets/",
        "https://GitHub.com/acme/widgets",
        "https://www.github.com/acme/widgets",
        "http://github.com/acme/widgets",
        "https://github.com/acme/widgets#readme",
        "https://github.com/acme/widgets/tree/main/packages/core",
        "https://github.com/acme/widgets/blob/main/README.md",
        "git://github.com/acme/widgets.git",
        "git@github.com:acme/widgets.git",
        "git@github.com:acme/widgets",
        "git+ssh://git@github.com/acme/widgets.git",
        "git+ssh://git@github.com:acme/widgets.git",
        "ssh://git@github.com/acme/widgets.git",
        "https://user:secret@github.com/acme/widgets.git",
        "  github:acme/widgets  ",
        {"type": "git", "url": "git+https://github.com/acme/widgets.git"},
        {"type": "git", "url": "https://github.com/acme/widgets", "directory": "packages/core"},
        {"url": "github:acme/widgets"},
    ],
)
def test_accepted_forms(field: object) -> None:
    assert parse_repository(field, "github.com") == ACME


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("Acme/Widgets", Repository("Acme", "Widgets")),
        ("acme/widgets.js", Repository("acme", "widgets.js")),
        ("acme/.github", Repository("acme", ".github")),
        ("a/b", Repository("a", "b")),
        ("acme-corp/my_repo-2", Repository("acme-corp", "my_repo-2")),
        ("alice_acme/dotfiles", Repository("alice_acme", "dotfiles")),  # enterprise managed user
        ("o" * 39 + "/r", Repository("o" * 39, "r")),
        ("acme/" + "r" * 100, Repository("acme", "r" * 100)),
    ],
)
def test_names_kept_as_written(field: str, expected: Repository) -> None:
    assert parse_repository(field, "github.com") == expected


@pytest.mark.parametrize(
    "field",
    [
        None,
        "",
        "   ",
        42,
        ["acme/widgets"],
        {},
        {"type": "git"},
        {"type": "svn", "url": "https://github.com/acme/widgets"},
        {"type": "git", "url": 7},
        "widgets",
        "acme/widgets/extra",
        "https://github.com/acme",
        "https://github.com/",
        "https://github.com/acme/widgets/issues",
        "git+https://github.com/acme/widgets/tree/main",
        "ftp://github.com/acme/widgets",
        "file:../widgets",
        "gitlab:acme/widgets",
        "bitbucket:acme/widgets",
        "gist:11081aaa281",
        "https://gitlab.com/acme/widgets",
        "git@gitlab.com:acme/widgets.git",
        "https://github.com.evil.example/acme/widgets",
        "https://evil.example/github.com/acme/widgets",
        "-acme/widgets",
        "ac me/widgets",
        "acme!/widgets",
        "o" * 40 + "/r",
        "acme/" + "r" * 101,
        "acme/..",
        "acme/.",
        "acme/wid gets",
        "acme/wid%2fgets",
        "acme/",
        "/widgets",
    ],
)
def test_unusable(field: object) -> None:
    assert parse_repository(field, "github.com") is None


@pytest.mark.parametrize(
    ("field", "host"),
    [
        ("https://gitlab.com/acme/widgets", "gitlab.com"),
        ("git@bitbucket.org:acme/widgets.git", "bitbucket.org"),
        ("gitlab:acme/widgets", "gitlab.com"),
        ("https://ghe.example.com/acme/widgets", "ghe.example.com"),
    ],
)
def test_other_host_is_reported(field: str, host: str) -> None:
    with pytest.raises(RepositoryError) as info:
        check_repository(field, "github.com")
    assert info.value.host == host


@pytest.mark.parametrize("field", ["file:../widgets", "npm:other@1", "workspace:*", "link:../w"])
def test_local_specs_are_not_mistaken_for_hosts(field: str) -> None:
    with pytest.raises(RepositoryError) as info:
        check_repository(field, "github.com")
    assert info.value.host is None


def test_reason_never_echoes_credentials_in_the_url() -> None:
    with pytest.raises(RepositoryError) as info:
        check_repository("https://user:hunter2@gitlab.com/acme/widgets", "github.com")
    assert "hunter2" not in str(info.value)
    assert info.value.host == "gitlab.com"


@pytest.mark.parametrize(
    ("api_url", "host"),
    [
        ("https://api.github.com", "github.com"),
        ("https://api.github.com/", "github.com"),
        ("https://ghe.example.com/api/v3", "ghe.example.com"),
        ("https://GHE.Example.com/api/v3/", "ghe.example.com"),
        ("https://api.acme.ghe.com", "acme.ghe.com"),
        ("http://127.0.0.1:8080", "127.0.0.1"),
    ],
)
def test_web_host(api_url: str, host: str) -> None:
    assert web_host(api_url) == host


@pytest.mark.parametrize(
    "field",
    [
        "https://ghe.example.com/acme/widgets",
        "git@ghe.example.com:acme/widgets.git",
        "git+https://ghe.example.com/acme/widgets.git",
        "acme/widgets",  # shorthand names no host: it means the configured one
        "github:acme/widgets",
    ],
)
def test_enterprise_host(field: str) -> None:
    assert parse_repository(field, "ghe.example.com") == ACME


@pytest.mark.parametrize("field", ["https://github.com/acme/widgets", "git@github.com:acme/widgets.git"])
def test_github_com_urls_refused_when_enterprise_is_configured(field: str) -> None:
    assert parse_repository(field, "ghe.example.com") is None
