"""Pure parts of nmr.upstream: finding the default upstream, deriving packuments, stripping audits."""

from __future__ import annotations

import json
import logging

import pytest

from nmr import packument as pm
from nmr.config import ConfigError, load_config
from nmr.upstream import (
    build_upstream_record,
    default_registry_url,
    make_upstream,
    strip_hosted_bulk,
    strip_hosted_tree,
)

A = "http://127.0.0.1:1111/"
B = "http://127.0.0.1:2222/"
C = "http://127.0.0.1:3333/"


@pytest.fixture
def home(tmp_path):
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_environment_variable_wins(home, tmp_path):
    (home / ".npmrc").write_text(f"registry={B}\n")
    assert default_registry_url({"HOME": str(home), "NPM_CONFIG_REGISTRY": A}) == A
    assert default_registry_url({"HOME": str(home), "npm_config_registry": A}) == A


def test_user_npmrc_then_global_npmrc(home, tmp_path):
    glob = tmp_path / "global-npmrc"
    glob.write_text(f"registry = {C}\n")
    env = {"HOME": str(home), "NPM_CONFIG_GLOBALCONFIG": str(glob)}
    assert default_registry_url(env) == C
    (home / ".npmrc").write_text(f"; a comment\n@acme:registry={A}\n//127.0.0.1:1111/:_authToken=x\nregistry={B}\n")
    assert default_registry_url(env) == B, "scoped registry lines are not the default registry"
    other = tmp_path / "userconfig"
    other.write_text(f'registry="{A}"\n')
    assert default_registry_url({**env, "NPM_CONFIG_USERCONFIG": str(other)}) == A


def test_variables_in_npmrc_are_expanded(home):
    (home / ".npmrc").write_text("registry=http://${REG_HOST}:4873/\n")
    assert default_registry_url({"HOME": str(home), "REG_HOST": "127.0.0.1"}) == "http://127.0.0.1:4873/"


def test_global_npmrc_found_under_the_node_prefix(home, tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "etc").mkdir()
    node = prefix / "bin" / "node"
    node.write_text("")
    (prefix / "etc" / "npmrc").write_text(f"registry={C}\n")
    assert default_registry_url({"HOME": str(home)}, node=str(node)) == C
    assert default_registry_url({"HOME": str(home), "NPM_CONFIG_PREFIX": str(prefix)}) == C


def test_nothing_configured_means_none(home, tmp_path):
    env = {"HOME": str(home), "NPM_CONFIG_GLOBALCONFIG": str(tmp_path / "missing")}
    assert default_registry_url(env) is None


def test_forwarding_off_without_a_registry_says_how_to_set_it(home, tmp_path, caplog):
    env = {"HOME": str(home), "NPM_CONFIG_GLOBALCONFIG": str(tmp_path / "missing")}
    config = load_config(environ={})
    with caplog.at_level(logging.WARNING, logger="nmr.upstream"):
        assert make_upstream(config, None, None, lambda n: False, environ=env) is None  # type: ignore[arg-type]
    assert "upstream.url" in caplog.text and "forwarding is off" in caplog.text


def test_default_upstream_comes_from_npm_configuration(home):
    config = load_config(environ={})
    upstream = make_upstream(config, None, None, lambda n: False, environ={"HOME": str(home), "NPM_CONFIG_REGISTRY": A})  # type: ignore[arg-type]
    assert upstream is not None and upstream.url == A.rstrip("/") and upstream.mode == "proxy"
    configured = load_config(environ={}, overrides={"upstream": {"url": B, "mode": "redirect"}})
    upstream = make_upstream(configured, None, None, lambda n: False, environ={"NPM_CONFIG_REGISTRY": A})  # type: ignore[arg-type]
    assert upstream is not None and upstream.url == B.rstrip("/") and upstream.mode == "redirect"
    off = load_config(environ={}, overrides={"upstream": {"url": B, "mode": "off"}})
    assert make_upstream(off, None, None, lambda n: False) is None  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"upstream\.url"):
        load_config(environ={}, overrides={"upstream": {"url": "ftp://x"}})
    # A default that is no http(s) URL turns forwarding off (and says so) rather than stopping nmr.
    assert make_upstream(config, None, None, lambda n: False, environ={"NPM_CONFIG_REGISTRY": "file:///x"}) is None  # type: ignore[arg-type]


def test_record_templates_tarball_urls_and_derives_abbreviated():
    doc = {
        "_id": "left",
        "name": "left",
        "dist-tags": {"latest": "1.0.0"},
        "time": {"modified": "2021-01-01T00:00:00.000Z"},
        "readme": "# left",
        "versions": {
            "1.0.0": {
                "name": "left",
                "version": "1.0.0",
                "scripts": {"postinstall": "node x.js"},
                "dependencies": {"a": "1"},
                "dist": {
                    "tarball": "http://127.0.0.1:9/left/-/left-1.0.0.tgz",
                    "shasum": "ab",
                    "integrity": "sha512-x",
                },
            }
        },
    }
    record = build_upstream_record("left", doc, '"up"', 5.0)
    full = json.loads(pm.materialize(record.full, "http://nmr"))
    assert full["versions"]["1.0.0"]["dist"] == {
        "tarball": "http://nmr/left/-/left-1.0.0.tgz",
        "shasum": "ab",
        "integrity": "sha512-x",
    }
    assert full["readme"] == "# left"
    corgi = json.loads(pm.materialize(record.abbreviated, "http://nmr"))
    assert corgi == {
        "name": "left",
        "modified": "2021-01-01T00:00:00.000Z",
        "dist-tags": {"latest": "1.0.0"},
        "versions": {
            "1.0.0": {
                "name": "left",
                "version": "1.0.0",
                "dist": full["versions"]["1.0.0"]["dist"],
                "dependencies": {"a": "1"},
                "hasInstallScript": True,
            }
        },
    }
    index = json.loads(record.index)
    assert index["versions"]["1.0.0"]["url"] == "http://127.0.0.1:9/left/-/left-1.0.0.tgz"
    assert record.head.validator == '"up"' and record.head.etag_full != record.head.etag_abbreviated
    assert doc["versions"]["1.0.0"]["dist"]["tarball"].startswith("http://127.0.0.1:9"), "input left unchanged"


def test_unsafe_versions_keep_their_upstream_url():
    doc = {"versions": {"../x": {"dist": {"tarball": "http://127.0.0.1:9/x.tgz"}}}}
    record = build_upstream_record("x", doc, "", 0)
    assert json.loads(record.index)["versions"] == {}
    assert json.loads(record.full)["versions"]["../x"]["dist"]["tarball"] == "http://127.0.0.1:9/x.tgz"


def hosted(name: str) -> bool:
    return name.startswith("@acme/")


def test_strip_hosted_bulk():
    assert strip_hosted_bulk({"a": ["1"], "@acme/x": ["1"], "@other/y": ["2"]}, hosted) == {
        "a": ["1"],
        "@other/y": ["2"],
    }
    assert strip_hosted_bulk(["not", "an", "object"], hosted) == {}


def test_strip_hosted_tree_at_every_depth():
    tree = {
        "name": "@acme/root",
        "requires": {"@acme/x": "1", "a": "1"},
        "dependencies": {"a": {"version": "1", "dependencies": {"@acme/deep": {"version": "1"}}}, "@acme/x": {}},
    }
    out = strip_hosted_tree(tree, hosted)
    assert "acme" not in json.dumps(out)
    assert out["requires"] == {"a": "1"} and out["dependencies"] == {"a": {"version": "1", "dependencies": {}}}
