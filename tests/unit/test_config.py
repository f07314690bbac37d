from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from nmr.config import DEFAULTS, ConfigError, load_config, parse_size

ETC = Path(__file__).resolve().parents[2] / "etc" / "nmr.toml"


def test_defaults():
    c = load_config(environ={})
    assert c.get("server.port") == 3000
    assert c.get("auth.type") == "github"
    assert c.get("metadata.leveldb.path") == "./data/db"
    assert c.get("registry.scopes") == []


def test_file_then_env_then_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[server]\nport = 4000\nthreads = 2\n[storage]\ntype = "s3"\n[storage.s3]\nbucket = "b"\n')
    env = {
        "NMR_SERVER__PORT": "5000",
        "NMR_AUTH__GITHUB__CACHE_TTL": "60",
        "NMR_SETTINGS__ALLOW_PREVIOUS_VERSION": "true",
        "NMR_REGISTRY__SCOPES": '["@acme"]',
        "NMR_AUTH__GITHUB__API_URL": "https://ghe.example.com/api/v3",
    }
    c = load_config(f, environ=env, overrides={"server": {"threads": 3}})
    assert c.get("server.port") == 5000
    assert c.get("server.threads") == 3
    assert c.get("storage.s3.bucket") == "b"
    assert c.get("auth.github.cache_ttl") == 60
    assert c.get("settings.allow_previous_version") is True
    assert c.get("registry.scopes") == ["@acme"]
    assert c.get("auth.github.api_url") == "https://ghe.example.com/api/v3"


def test_nmr_config_variable_names_the_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[server]\nport = 4001\n")
    assert load_config(environ={"NMR_CONFIG": str(f)}).get("server.port") == 4001


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "unknown configuration key 'server.prot'"),
        ("[nope]\n", "unknown configuration key 'nope'"),
        ("[server]\nport = 'x'\n", "must be a int"),
        ('[storage]\ntype = "ftp"\n', "choose one of: local, s3"),
        ('[registry]\nscopes = ["acme"]\n', "is not a scope"),
        ('[settings]\nmax_body_size = "lots"\n', "not a size"),
        ("not toml = = 1", "not valid TOML"),
    ],
)
def test_bad_configuration_stops_with_a_clear_message(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(f, environ={})


def test_unknown_env_key_is_refused():
    with pytest.raises(ConfigError, match=re.escape("unknown configuration key 'server.colour'")):
        load_config(environ={"NMR_SERVER__COLOUR": "blue"})


def test_scope_owners_is_an_open_table(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[registry.scope_owners]\n"@acme-internal" = "acme"\n')
    assert load_config(f, environ={}).get("registry.scope_owners") == {"@acme-internal": "acme"}


def test_parse_size():
    assert parse_size("100mb") == 100 * 1024**2
    assert parse_size("512kb") == 512 * 1024
    assert parse_size(10) == 10
    with pytest.raises(ConfigError):
        parse_size("1tb")


def test_secrets_are_masked():
    c = load_config(environ={"NMR_STORAGE__S3__SECRET_ACCESS_KEY": "hunter2"})
    assert c.masked()["storage"]["s3"]["secret_access_key"] == "***"
    assert "hunter2" not in repr(c.masked())


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and f"{prefix}{k}" != "registry.scope_owners":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_etc_nmr_toml_documents_every_key_with_its_default():
    """etc/nmr.toml is the configuration reference: it must match DEFAULTS exactly."""
    with open(ETC, "rb") as fh:
        documented = tomllib.load(fh)
    assert _flatten(documented) == _flatten(DEFAULTS)
    load_config(ETC, environ={})  # and it loads
