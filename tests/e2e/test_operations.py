"""Running nmr in production: shutdown during a publish, timeouts, the access log, metrics, startup log.

Each test drives a real ``nmr serve`` (gunicorn, one gthread worker) on 127.0.0.1.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import time
import typing as t

import pytest
import requests

from tests.builders import escape, make_tarball, publish_body
from tests.e2e.harness import NmrServer, make_package, make_project
from tests.prom import parse_metrics, sample

NAME = "@acme/big"
TOKEN = "ghp_E2eAccessLogSecret0123456789abcdef"


def big_publish(version: str = "1.0.0", size: int = 6 * 1024 * 1024) -> tuple[bytes, bytes]:
    """``(tarball, publish body)`` for a package whose tarball is ``size`` random bytes (incompressible)."""
    tarball = make_tarball(NAME, version, files={"blob.bin": os.urandom(size)})
    body = json.dumps(publish_body(NAME, version, tarball=tarball)).encode()
    return tarball, body


class SlowPublish:
    """A publish sent in chunks with pauses, so the test can act while it is in flight."""

    def __init__(self, server: NmrServer, body: bytes, chunk: int = 256 * 1024) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.body, self.chunk, self.sent = body, chunk, 0
        self.conn.putrequest("PUT", f"/{escape(NAME)}")
        self.conn.putheader("Content-Type", "application/json")
        self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders()

    def send(self, fraction: float, pause: float) -> None:
        """Send chunks until ``fraction`` of the body is out, sleeping ``pause`` after each."""
        until = int(len(self.body) * fraction)
        while self.sent < until:
            piece = self.body[self.sent : min(self.sent + self.chunk, until)]
            self.conn.send(piece)
            self.sent += len(piece)
            time.sleep(pause)

    def response(self) -> tuple[int, dict[str, t.Any]]:
        r = self.conn.getresponse()
        status, payload = r.status, json.loads(r.read() or b"{}")
        self.conn.close()
        return status, payload


def stops_serving(server: NmrServer, within: float = 10) -> bool:
    """True once a new request goes unanswered (refused, or left in the closing listener's backlog)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            requests.get(f"{server.url}/-/ping", timeout=1)
        except requests.RequestException:
            return True
        time.sleep(0.1)
    return False


def stored_files(server: NmrServer) -> list[str]:
    root = server.workdir / "storage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_sigterm_lets_an_in_flight_publish_finish(start_nmr):
    server = start_nmr({"auth": {"type": "none"}, "server": {"graceful_timeout": 30}})
    tarball, body = big_publish()
    upload = SlowPublish(server, body)
    upload.send(0.25, pause=0.02)

    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGTERM)  # what `docker stop` does: SIGTERM to the master only
    # Shutdown is under way (the listener is closed) while the publish is still being uploaded.
    assert stops_serving(server)
    upload.send(1.0, pause=0.02)
    status, payload = upload.response()
    assert status == 201, payload
    assert payload["ok"] is True
    assert server.proc.wait(timeout=30) == 0
    assert "Handling signal: term" in server.log()

    server.stop()
    server.start()  # same database and storage
    doc = requests.get(f"{server.url}/{escape(NAME)}", timeout=10).json()
    assert list(doc["versions"]) == ["1.0.0"]
    downloaded = requests.get(doc["versions"]["1.0.0"]["dist"]["tarball"], timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == tarball


def test_sigterm_past_the_graceful_timeout_leaves_no_trace(start_nmr):
    server = start_nmr({"auth": {"type": "none"}, "server": {"graceful_timeout": 1}})
    _tarball, body = big_publish()
    upload = SlowPublish(server, body, chunk=64 * 1024)
    upload.send(0.2, pause=0.01)

    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGTERM)
    started = time.monotonic()
    outcome: t.Any
    try:
        upload.send(1.0, pause=0.05)  # ~5 s more: far past the 1 s grace
        outcome = upload.response()
    except OSError as exc:  # reset or broken pipe when the worker is killed
        outcome = exc
    assert not (isinstance(outcome, tuple) and outcome[0] == 201), outcome
    assert server.proc.wait(timeout=30) is not None
    assert time.monotonic() - started < 20

    server.stop()
    server.start()
    assert requests.get(f"{server.url}/{escape(NAME)}", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/{escape(NAME)}/1.0.0", timeout=10).status_code == 404
    assert stored_files(server) == []  # no tarball, no temp file


def test_long_uploads_outlive_the_worker_timeout_but_a_stalled_body_is_cut(start_nmr):
    # gthread's `timeout` is a heartbeat of the worker's loop: a 5 s upload with timeout = 2 s
    # must succeed. A body that stops arriving for read_timeout seconds gets a 408.
    server = start_nmr({"auth": {"type": "none"}, "server": {"timeout": 2, "read_timeout": 2}})
    _tarball, body = big_publish(size=512 * 1024)
    upload = SlowPublish(server, body, chunk=len(body) // 12 + 1)
    began = time.monotonic()
    upload.send(1.0, pause=0.45)
    status, payload = upload.response()
    assert time.monotonic() - began > 4
    assert status == 201, payload

    stalled = SlowPublish(server, big_publish("1.0.1", size=64 * 1024)[1])
    stalled.send(0.5, pause=0)
    began = time.monotonic()
    status, payload = stalled.response()
    assert status == 408 and "server.read_timeout" in payload["error"]
    assert 1.5 < time.monotonic() - began < 10

    log = server.log()
    assert "WORKER TIMEOUT" not in log and log.count("Booting worker") == 1
    assert requests.get(f"{server.url}/-/ping", timeout=5).status_code == 200


def _drive_with_credentials(server: NmrServer, make_npm: t.Any, tmp_path: t.Any) -> None:
    """npm publish and install with a token, then raw calls with Bearer and Basic credentials."""
    npm = make_npm(server.url, token=TOKEN)
    src = make_package(tmp_path / "src", "@acme/logged", "1.0.0")
    npm.run("publish", cwd=src)
    npm.clear_cache()  # publish leaves the tarball in npm's cache; install must download it
    npm.run("install", cwd=make_project(tmp_path / "app", {"@acme/logged": "^1.0.0"}))
    basic = base64.b64encode(f"alice:{TOKEN}".encode()).decode()
    r = requests.get(f"{server.url}/@acme%2flogged", headers={"Authorization": f"Basic {basic}"}, timeout=10)
    assert r.status_code == 200
    r = requests.get(
        f"{server.url}/@acme%2flogged?token={TOKEN}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert r.status_code == 200
    assert requests.delete(f"{server.url}/-/user/token/{TOKEN}", timeout=10).status_code == 200


def _access_lines(log: str, fmt: str) -> list[t.Any]:
    if fmt == "json":
        records = [json.loads(line) for line in log.splitlines() if line.strip()]
        return [r for r in records if r["logger"] == "nmr.access"]
    return [line for line in log.splitlines() if " nmr.access: " in line]


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_access_log_of_a_real_server_has_one_line_per_request_and_no_token(start_nmr, make_npm, tmp_path, fmt):
    server = start_nmr({"auth": {"type": "none"}, "logging": {"format": fmt}, "metrics": {"enabled": True}})
    _drive_with_credentials(server, make_npm, tmp_path)
    time.sleep(0.3)  # the last line is written after the last byte is sent
    log = server.log()
    assert TOKEN not in log and TOKEN[4:20] not in log
    assert "Bearer" not in log and "Basic" not in log

    lines = _access_lines(log, fmt)
    if fmt == "json":
        # Every line of the log is JSON, gunicorn's own lines included.
        assert any(r["logger"] == "gunicorn.error" for r in map(json.loads, log.splitlines()))
        publish = next(r for r in lines if r["method"] == "PUT" and r["route"] == "publish")
        assert publish["status"] == 201 and publish["login"] == "anonymous" and publish["bytes"] > 0
        assert publish["path"].lower() == "/@acme%2flogged" and publish["duration_ms"] > 0
        tarballs = [r for r in lines if r["route"] == "tarball"]
        assert tarballs and all(r["status"] == 200 and r["bytes"] > 0 for r in tarballs)
        assert any(r["path"] == "/-/user/token/***" for r in lines)
        assert all("?" not in r["path"] for r in lines)
        assert {r["method"] for r in lines} >= {"GET", "PUT", "DELETE"}
    else:
        assert any(' anonymous "PUT /@acme%2flogged" 201 ' in line.replace("%2F", "%2f") for line in lines)
        assert any('"DELETE /-/user/token/***" 200 ' in line for line in lines)
        assert all("?" not in line for line in lines)
        assert all(line.rstrip().endswith("ms") for line in lines)
    # One line per request: the raw calls above are three, npm made at least a packument,
    # a publish and a tarball request.
    assert len(lines) >= 6

    startup = next(line for line in log.splitlines() if "ready: metadata=leveldb" in line)
    assert str(server.workdir / "db") in startup and str(server.workdir / "storage") in startup
    assert "auth=none" in startup and "upstream=off" in startup and "scopes=every @scope" in startup
    assert "ANYONE who can reach this server" in log

    samples, _types = parse_metrics(requests.get(f"{server.url}/-/metrics", timeout=10).text)
    assert sample(samples, "nmr_http_requests_total", route="publish", method="PUT", status="201") == 1
    assert sample(samples, "nmr_storage_bytes_written_total") > 0
    assert sample(samples, "nmr_storage_bytes_read_total") > 0
    assert sample(samples, "nmr_http_request_duration_seconds_count", route="packument") >= 2


def test_ready_on_a_real_server_turns_503_when_storage_goes_away(start_nmr):
    server = start_nmr()
    assert requests.get(f"{server.url}/-/ready", timeout=10).json()["ok"] is True
    storage = server.workdir / "storage"
    storage.rename(server.workdir / "storage-moved")
    storage.write_text("a file where the directory was")
    r = requests.get(f"{server.url}/-/ready", timeout=10)
    assert r.status_code == 503 and r.json()["storage"]["ok"] is False
    assert requests.get(f"{server.url}/-/ping", timeout=10).status_code == 200
