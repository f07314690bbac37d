from __future__ import annotations

import json
import logging

import pytest

from nmr.logs import JsonFormatter
from nmr.observe import ROUTES, loggable_path, route_label


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/@acme/widgets", "packument"),
        ("HEAD", "/lodash", "packument"),
        ("PUT", "/@acme/widgets", "publish"),
        ("GET", "/@acme/widgets/1.2.0", "manifest"),
        ("GET", "/@acme/widgets/latest", "manifest"),
        ("GET", "/@acme/widgets/-/widgets-1.2.0.tgz", "tarball"),
        ("GET", "/@acme/widgets/-/@acme/widgets-1.2.0.tgz", "tarball"),
        ("GET", "/lodash/-/lodash-4.17.21.tgz", "tarball"),
        ("PUT", "/@acme/widgets/-rev/3-abc", "update"),
        ("DELETE", "/@acme/widgets/-rev/3-abc", "unpublish"),
        ("DELETE", "/@acme/widgets/-/widgets-1.0.0.tgz/-rev/4-abc", "unpublish"),
        ("GET", "/-/package/@acme/widgets/dist-tags", "dist-tags"),
        ("PUT", "/-/package/@acme/widgets/dist-tags/beta", "dist-tags"),
        ("GET", "/-/v1/search", "search"),
        ("GET", "/-/whoami", "user"),
        ("PUT", "/-/user/org.couchdb.user:alice", "user"),
        ("DELETE", "/-/user/token/abc", "user"),
        ("POST", "/-/npm/v1/security/advisories/bulk", "audit"),
        ("GET", "/-/ping", "ping"),
        ("GET", "/-/ready", "ready"),
        ("GET", "/-/metrics", "metrics"),
        ("GET", "/-/nothing", "other"),
        ("GET", "/", "other"),
        ("POST", "/@acme/widgets", "other"),
        ("GET", "/@acme/widgets/a/b/c", "other"),
    ],
)
def test_route_label(method, path, route):
    assert route_label(method, path) == route
    assert route in ROUTES


@pytest.mark.parametrize(
    ("environ", "logged"),
    [
        ({"RAW_URI": "/@acme%2fwidgets?write=true&token=abc"}, "/@acme%2fwidgets"),
        ({"RAW_URI": "/-/user/token/ghp_secret123"}, "/-/user/token/***"),
        ({"RAW_URI": "http://user:ghp_secret@host/@acme/w"}, "/@acme/w"),
        ({"RAW_URI": "/a\x1b[31m\nb"}, "/a%1B[31m%0Ab"),
        ({"PATH_INFO": "/@acme/w dget", "SCRIPT_NAME": "/npm"}, "/npm/@acme/w%20dget"),
    ],
)
def test_loggable_path_drops_queries_credentials_and_control_characters(environ, logged):
    assert loggable_path(environ) == logged


def test_json_formatter_merges_fields_and_keeps_one_line():
    record = logging.LogRecord("nmr.access", logging.INFO, __file__, 1, "line\nbreak %s", ("x",), None)
    record.fields = {"status": 201, "login": "alice", "message": "not overwritten"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["message"] == "line\nbreak x"
    assert out["status"] == 201 and out["login"] == "alice"
    assert out["level"] == "info" and out["logger"] == "nmr.access" and out["time"].endswith("Z")
