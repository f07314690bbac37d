"""Configuration: built-in defaults, then a TOML file, then ``NMR_<SECTION>__<KEY>`` variables.

How to add an option:

1. Add the key and its default to ``DEFAULTS`` below (a nested dict mirrors the TOML file).
2. Document it, with the same default, in ``etc/nmr.toml``; ``tests/unit/test_config.py`` checks
   that the two agree, so a key cannot be added to one and forgotten in the other.
3. If it holds a secret, add its dotted name to ``SECRET_KEYS`` so ``nmr check-config`` masks it.
4. Read it where it is used with ``config.get("section.key")``.

Nothing here imports Flask or opens a backend: this module only builds and checks a dict.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
import typing as t
from collections.abc import Mapping

ENV_PREFIX = "NMR_"

DEFAULTS: dict[str, t.Any] = {
    "server": {
        "host": "0.0.0.0",  # noqa: S104 - a registry serves its network; set 127.0.0.1 to keep it local
        "port": 3000,
        "public_url": "",
        "threads": 8,
        "timeout": 300,
        "keepalive": 5,
        "graceful_timeout": 60,
    },
    "logging": {"level": "info", "format": "plain"},
    "metrics": {"enabled": False},
    "settings": {"allow_previous_version": False, "max_body_size": "100mb"},
    "registry": {"scopes": [], "scope_owners": {}},
    "auth": {
        "type": "github",
        "github": {
            "api_url": "https://api.github.com",
            # Web host repository URLs must name; "" derives it from api_url
            # (api.github.com -> github.com, https://ghe.example.com/api/v3 -> ghe.example.com).
            "host": "",
            "cache_ttl": 300,
            "negative_ttl": 30,
            "stale_grace": 3600,
            "orgs": [],
            "unpublish": "admin",
            "timeout": 10,
        },
    },
    "metadata": {"type": "leveldb", "leveldb": {"path": "./data/db"}},
    "storage": {
        "type": "local",
        "local": {"path": "./data/storage"},
        "s3": {
            "bucket": "",
            "prefix": "",
            "region": "",
            "endpoint_url": "",
            "access_key_id": "",
            "secret_access_key": "",
            "force_path_style": False,
            "redirect": False,
            "redirect_expires": 300,
        },
    },
    "upstream": {"url": "", "mode": "proxy", "max_age": 120, "timeout": 30},
}

#: Keys whose values are free-form tables (their own keys are user data, not options).
OPEN_TABLES = frozenset({"registry.scope_owners"})

#: Dotted keys masked by ``nmr check-config``.
SECRET_KEYS = frozenset({"storage.s3.secret_access_key", "storage.s3.access_key_id"})

CHOICES: dict[str, tuple[str, ...]] = {
    "auth.type": ("github", "none"),
    "metadata.type": ("leveldb",),
    "storage.type": ("local", "s3"),
    "upstream.mode": ("proxy", "redirect", "off"),
    "auth.github.unpublish": ("admin", "push"),
    "logging.format": ("plain", "json"),
    "logging.level": ("debug", "info", "warning", "error"),
}


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class Config(Mapping[str, t.Any]):
    """The effective configuration: a read-only nested mapping with dotted look-ups."""

    def __init__(self, data: dict[str, t.Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> t.Any:
        return self._data[key]

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, dotted: str, default: t.Any = None) -> t.Any:
        node: t.Any = self._data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def as_dict(self) -> dict[str, t.Any]:
        return copy.deepcopy(self._data)

    def masked(self) -> dict[str, t.Any]:
        """The configuration with secrets replaced by ``"***"`` (for printing)."""
        data = self.as_dict()
        for dotted in SECRET_KEYS:
            *parents, last = dotted.split(".")
            node = data
            for p in parents:
                node = node[p]
            if node.get(last):
                node[last] = "***"
        return data


def parse_size(value: int | str) -> int:
    """``"100mb"`` -> bytes. Accepts an int, or a number with b/kb/mb/gb (powers of 1024)."""
    if isinstance(value, bool):
        raise ConfigError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", str(value).lower())
    if not m:
        raise ConfigError(f"not a size: {value!r} (use e.g. 500kb, 100mb, 1gb)")
    unit = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2}
    unit |= {"g": 1024**3, "gb": 1024**3}
    return int(m.group(1)) * unit[m.group(2)]


def _parse_env_value(raw: str) -> t.Any:
    """Parse an environment value as a TOML scalar (``true``, ``300``, ``["a"]``); else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _merge(base: dict[str, t.Any], override: Mapping[str, t.Any], where: str = "") -> None:
    """Merge ``override`` into ``base`` in place, refusing keys the defaults do not know."""
    for key, value in override.items():
        dotted = f"{where}{key}"
        if key not in base:
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"unknown configuration key {dotted!r}; known keys here: {known}")
        if isinstance(base[key], dict) and dotted not in OPEN_TABLES:
            if not isinstance(value, Mapping):
                raise ConfigError(f"configuration key {dotted!r} must be a table")
            _merge(base[key], value, f"{dotted}.")
        else:
            base[key] = value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        if name in ("NMR_CONFIG",):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another NMR_ variable")
        node[path[-1]] = _parse_env_value(raw)
    return out


def _check_types(data: dict[str, t.Any], defaults: dict[str, t.Any], where: str = "") -> None:
    for key, default in defaults.items():
        dotted = f"{where}{key}"
        value = data[key]
        if isinstance(default, dict) and dotted not in OPEN_TABLES:
            _check_types(value, default, f"{dotted}.")
            continue
        expected: type | tuple[type, ...] = type(default)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif dotted == "settings.max_body_size":
            ok = isinstance(value, int | str)
        else:
            ok = isinstance(value, expected)
        if not ok:
            raise ConfigError(f"configuration key {dotted!r} must be a {type(default).__name__}, got {value!r}")
        if dotted in CHOICES and value not in CHOICES[dotted]:
            allowed = ", ".join(CHOICES[dotted])
            raise ConfigError(f"configuration key {dotted!r} is {value!r}; choose one of: {allowed}")


def _validate(data: dict[str, t.Any]) -> None:
    _check_types(data, DEFAULTS)
    parse_size(data["settings"]["max_body_size"])
    for scope in data["registry"]["scopes"]:
        if not isinstance(scope, str) or not re.fullmatch(r"@[a-z0-9][a-z0-9._~-]*", scope):
            raise ConfigError(f"registry.scopes: {scope!r} is not a scope like '@acme'")
    for scope, owner in data["registry"]["scope_owners"].items():
        if not re.fullmatch(r"@[a-z0-9][a-z0-9._~-]*", scope) or not isinstance(owner, str):
            raise ConfigError(f"registry.scope_owners: {scope!r} = {owner!r} must map '@scope' = 'owner'")
    public_url = data["server"]["public_url"]
    if public_url and not re.fullmatch(r"https?://[^\s\"'<>\\]+", public_url):
        raise ConfigError(f"server.public_url {public_url!r} must be an http(s) URL")
    if data["storage"]["type"] == "s3" and not data["storage"]["s3"]["bucket"]:
        raise ConfigError("storage.type is 's3' but storage.s3.bucket is empty: name the bucket")
    if data["server"]["threads"] < 1:
        raise ConfigError("server.threads must be at least 1")


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, t.Any] | None = None,
) -> Config:
    """Build the effective configuration.

    Order: ``DEFAULTS``, then the TOML file at ``path`` (or ``$NMR_CONFIG``), then the
    ``NMR_<SECTION>__<KEY>`` environment variables, then ``overrides`` (tests). Raises
    ``ConfigError`` for an unknown key, a wrong type or an unreadable file.
    """
    env = os.environ if environ is None else environ
    data = copy.deepcopy(DEFAULTS)
    path = path or env.get("NMR_CONFIG") or None
    if path:
        try:
            with open(path, "rb") as fh:
                file_data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
        _merge(data, file_data)
    _merge(data, _env_overrides(env))
    if overrides:
        _merge(data, overrides)
    _validate(data)
    return Config(data)
