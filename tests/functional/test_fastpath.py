"""The WSGI fast path answers hot reads exactly as the Flask views do, without reaching Flask."""

from __future__ import annotations

import os

import pytest
from werkzeug.test import Client, EnvironBuilder

from tests.builders import escape, publish_body

NAME = "@acme/widgets"
CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


@pytest.fixture
def seeded(app, client):
    client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0", extra={"pad": "x" * 3000}))
    return app


def fast_path(app):
    from nmr.api.fastpath import FastPath

    layer = app.wsgi_app
    while not isinstance(layer, FastPath):
        layer = layer.app
    return layer


def call(wsgi, path, method="GET", headers=None):
    environ = EnvironBuilder(path=path.split("?")[0], method=method, headers=headers or {}).get_environ()
    environ["RAW_URI"] = path
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(response_headers)

    body_iter = wsgi(environ, start_response)
    try:
        body = b"".join(body_iter)
    finally:
        if hasattr(body_iter, "close"):
            body_iter.close()
    seen["headers"].pop("Date", None)
    return seen["status"], seen["headers"], body


CASES = [
    ("/@acme%2fwidgets", {}),
    ("/@acme/widgets", {"Accept": CORGI}),
    ("/@acme%2Fwidgets", {"Accept-Encoding": "gzip, deflate"}),
    ("/@acme%2fwidgets", {"Accept": CORGI, "Accept-Encoding": "gzip"}),
    ("/@acme/widgets/-/widgets-1.0.0.tgz", {}),
    ("/@acme%2fwidgets/-/widgets-1.0.0.tgz", {"Accept": CORGI}),
    ("/@acme%2fnothing", {}),
    ("/@acme/widgets/-/widgets-9.9.9.tgz", {}),
    ("/@ACME%2fwidgets", {}),
]


@pytest.mark.parametrize(("path", "headers"), CASES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fast_path_and_flask_give_the_same_answer(seeded, path, headers, method):
    fast = fast_path(seeded)  # FastPath(Flask)
    flask_only = fast.app
    assert call(fast, path, method, headers) == call(flask_only, path, method, headers)


def test_conditional_requests_match(seeded):
    fast = fast_path(seeded)
    _status, headers, _body = call(fast, "/@acme%2fwidgets")
    for wsgi in (fast, fast.app):
        status, h, body = call(wsgi, "/@acme%2fwidgets", headers={"If-None-Match": headers["ETag"]})
        assert status.startswith("304") and body == b"" and h["ETag"] == headers["ETag"]


def test_hot_reads_do_not_reach_flask(seeded, monkeypatch):
    fast = fast_path(seeded)
    calls = []
    inner = fast.app
    monkeypatch.setattr(fast, "app", lambda environ, sr: calls.append(environ["PATH_INFO"]) or inner(environ, sr))
    client = Client(fast)
    assert client.get("/@acme%2fwidgets").status_code == 200
    assert client.get("/@acme/widgets/-/widgets-1.0.0.tgz").status_code == 200
    assert client.get("/@acme%2fnothing").status_code == 404  # domain errors are answered here too
    assert calls == []
    assert client.get("/@acme%2fwidgets?write=true").status_code == 200  # not a hot read: Flask
    assert calls == ["/@acme/widgets"]


TARBALL = "/@acme%2fwidgets/-/widgets-1.0.0.tgz"


@pytest.mark.parametrize("small_file", [0, 10, 256 * 1024])
def test_tarballs_read_whole_or_streamed_match_flask(seeded, monkeypatch, small_file):
    """Small tarballs are read in one go, bigger ones go through the file wrapper: same bytes."""
    monkeypatch.setattr("nmr.api.fastpath.SMALL_FILE", small_file)
    fast = fast_path(seeded)
    status, headers, body = call(fast, TARBALL)
    assert status.startswith("200") and int(headers["Content-Length"]) == len(body) > 10
    assert (status, headers, body) == call(fast.app, TARBALL)


def test_a_tarball_file_gone_from_disk_gets_the_flask_error(seeded):
    services = seeded.extensions["nmr"]
    fast = fast_path(seeded)
    entry = services.registry.metadata.tarball(NAME, "1.0.0")
    path = services.storage.local_path(entry.key)
    os.remove(path)
    fast_answer = call(fast, TARBALL)
    assert fast_answer == call(fast.app, TARBALL)
    assert fast_answer[0][:1] in ("4", "5") and b"error" in fast_answer[2]
