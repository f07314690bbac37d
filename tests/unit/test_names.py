from __future__ import annotations

import pytest

from nmr import semver
from nmr.errors import BadRequest
from nmr.names import split_package_path, validate_name, validate_tag, version_from_filename


@pytest.mark.parametrize(
    ("raw", "name", "rest"),
    [
        ("/@acme%2fwidgets", "@acme/widgets", ()),
        ("/@acme%2Fwidgets", "@acme/widgets", ()),
        ("/%40acme%2fwidgets", "@acme/widgets", ()),
        ("/@acme/widgets", "@acme/widgets", ()),
        ("/@acme/widgets/-/widgets-1.0.0.tgz", "@acme/widgets", ("-", "widgets-1.0.0.tgz")),
        (
            "/@acme%2fwidgets/-/widgets-1.0.0.tgz/-rev/3-abc",
            "@acme/widgets",
            ("-", "widgets-1.0.0.tgz", "-rev", "3-abc"),
        ),
        ("/@acme%2fwidgets/1.0.0", "@acme/widgets", ("1.0.0",)),
        ("/lodash", "lodash", ()),
        ("/lodash/-/lodash-4.17.21.tgz", "lodash", ("-", "lodash-4.17.21.tgz")),
        ("/JSONStream", "JSONStream", ()),
    ],
)
def test_split_package_path(raw, name, rest):
    pp = split_package_path(raw)
    assert (pp.name, pp.rest) == (name, rest)


@pytest.mark.parametrize(
    "raw",
    [
        "/@acme",
        "/@acme%2fa%2fb",
        "/@acme/a/%2e%2e%2fx",
        "/..",
        "/@acme/..",
        "/.x",
        "/a%2fb",
        "/@acme/a b",
        "/" + "a" * 215,
    ],
)
def test_split_package_path_refuses(raw):
    with pytest.raises(BadRequest):
        split_package_path(raw)


@pytest.mark.parametrize("name", ["@acme/widgets", "a", "a.b-c_d", "@a1/x", "widgets"])
def test_hosted_names_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "@Acme/w",
        "Widgets",
        "_x",
        ".x",
        "@acme/",
        "@/x",
        "a/b",
        "node_modules",
        "a~b",
        "x" * 215,
        "",
    ],
)
def test_hosted_names_refused(name):
    with pytest.raises(BadRequest):
        validate_name(name)


@pytest.mark.parametrize("tag", ["latest", "beta", "next-2", "rc.1"])
def test_tags_accepted(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["1.2", "v1", "x", "*", "", "^1", "a/b", "=1"])
def test_tags_refused(tag):
    with pytest.raises(BadRequest):
        validate_tag(tag)


def test_version_from_filename():
    assert version_from_filename("@acme/w", "w-1.2.3-beta.1.tgz") == "1.2.3-beta.1"
    assert version_from_filename("@acme/w", "x-1.2.3.tgz") is None
    assert version_from_filename("@acme/w", "w-..%2f.tgz") is None


def test_semver_order_and_validity():
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    assert semver.sort_versions(list(reversed(order))) == order
    assert semver.highest(["1.0.0", "2.0.0-rc.1"]) == "1.0.0"
    assert semver.highest(["2.0.0-rc.1"]) == "2.0.0-rc.1"
    for bad in ("1.0", "01.0.0", "v1.0.0", "1.0.0-", "1.0.0+"):
        assert not semver.is_valid(bad)
    assert semver.is_valid("1.0.0+build.5")
