"""Readiness, metrics and the access log, through the Flask test client (LevelDB + local disk)."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import typing as t

import pytest
from flask.testing import FlaskClient

from nmr.app import create_app
from nmr.logs import JsonFormatter, make_formatter
from tests.builders import escape, make_tarball, publish_body
from tests.prom import parse_metrics, sample, total

NAME = "@acme/ops"
BEARER = "ghp_BearerSecret0123456789"
BASIC_PASSWORD = "ghp_BasicSecret9876543210"


class BufferedClient(FlaskClient):
    """Reads and closes every response, as a WSGI server does, so the access log line is written."""

    def open(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = BufferedClient
    return app.test_client()


@pytest.fixture
def metrics_app(make_config):
    application = create_app(make_config(metrics={"enabled": True}))
    application.test_client_class = BufferedClient
    yield application
    application.extensions["nmr"].close()


def test_ping_and_ready_when_healthy(client):
    assert client.get("/-/ping").status_code == 200
    r = client.get("/-/ready")
    assert r.status_code == 200
    assert r.json == {"ok": True, "metadata": {"ok": True}, "storage": {"ok": True}}
    assert r.headers["Cache-Control"] == "no-store"


def test_ready_fails_when_storage_directory_is_replaced_by_a_file(client, tmp_path):
    storage = tmp_path / "storage"
    shutil.rmtree(storage)
    storage.write_text("not a directory")
    assert client.get("/-/ping").status_code == 200  # liveness touches no backend
    r = client.get("/-/ready")
    assert r.status_code == 503
    assert r.json["ok"] is False
    assert r.json["metadata"] == {"ok": True}
    assert r.json["storage"]["ok"] is False
    assert str(storage) in r.json["storage"]["error"]
    assert r.json["error"].startswith("not ready: storage: ")
    assert r.headers["Retry-After"]


def test_ready_fails_when_storage_directory_is_removed(client, tmp_path):
    shutil.rmtree(tmp_path / "storage")
    r = client.get("/-/ready")
    assert r.status_code == 503 and r.json["storage"]["ok"] is False


def test_ready_fails_when_the_metadata_directory_is_gone(client, tmp_path):
    shutil.rmtree(tmp_path / "db")
    r = client.get("/-/ready")
    assert r.status_code == 503
    assert r.json["storage"] == {"ok": True}
    assert r.json["metadata"]["ok"] is False and "gone from disk" in r.json["metadata"]["error"]


def test_ready_fails_when_the_metadata_store_cannot_be_read(app, client):
    app.extensions["nmr"].metadata.close()
    r = client.get("/-/ready")
    assert r.status_code == 503
    assert r.json["metadata"]["ok"] is False and "cannot be read" in r.json["metadata"]["error"]


def test_metrics_are_404_unless_enabled(client):
    r = client.get("/-/metrics")
    assert r.status_code == 404 and "metrics.enabled" in r.json["error"]


def test_metrics_count_requests_by_route_latency_and_storage_bytes(metrics_app):
    client = metrics_app.test_client()
    before, _ = parse_metrics(client.get("/-/metrics").text)
    assert total(before, "nmr_http_requests_total", route="publish") == 0

    data = make_tarball(NAME, "1.0.0", files={"blob.bin": bytes(range(256)) * 400})
    assert client.put(f"/{escape(NAME)}", json=publish_body(NAME, "1.0.0", tarball=data)).status_code == 201
    assert client.get(f"/{escape(NAME)}").status_code == 200
    assert client.get(f"/{escape(NAME)}").status_code == 200
    tarball = client.get("/@acme/ops/-/ops-1.0.0.tgz")
    assert tarball.status_code == 200 and tarball.data == data
    assert client.get("/@acme/nothing-here").status_code == 404
    assert client.get("/-/v1/search?text=ops").status_code == 200

    r = client.get("/-/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = parse_metrics(r.text)
    assert types["nmr_http_requests_total"] == "counter"
    assert types["nmr_http_request_duration_seconds"] == "histogram"
    assert sample(samples, "nmr_http_requests_total", route="publish", method="PUT", status="201") == 1
    assert sample(samples, "nmr_http_requests_total", route="packument", method="GET", status="200") == 2
    assert sample(samples, "nmr_http_requests_total", route="packument", method="GET", status="404") == 1
    assert sample(samples, "nmr_http_requests_total", route="tarball", method="GET", status="200") == 1
    assert sample(samples, "nmr_http_requests_total", route="search", method="GET", status="200") == 1
    assert sample(samples, "nmr_http_request_duration_seconds_count", route="packument") == 3
    assert sample(samples, "nmr_http_request_duration_seconds_bucket", route="publish", le="+Inf") == 1
    assert sample(samples, "nmr_storage_bytes_written_total") == len(data)
    assert sample(samples, "nmr_storage_bytes_read_total") == len(data)
    assert sample(samples, "nmr_process_start_time_seconds") > 1.6e9
    # Labels come from a fixed set: no package name ever becomes a label value.
    assert "ops" not in "".join(v for (_n, labels) in samples for _k, v in labels)


def test_backends_report_into_the_app_registry(metrics_app):
    services = metrics_app.extensions["nmr"]
    assert services.auth.metrics is services.metrics
    assert services.metadata.metrics is services.metrics
    assert services.storage.metrics is services.metrics
    services.auth.metrics.inc("github_api_calls_total", {"endpoint": "user", "status": "200"})
    services.auth.metrics.inc("auth_cache_requests_total", {"result": "hit"})
    services.auth.metrics.inc("auth_cache_requests_total", {"result": "miss"})
    samples, _ = parse_metrics(metrics_app.test_client().get("/-/metrics").text)
    assert sample(samples, "nmr_github_api_calls_total", endpoint="user", status="200") == 1
    assert sample(samples, "nmr_auth_cache_requests_total", result="hit") == 1
    assert sample(samples, "nmr_auth_cache_requests_total", result="miss") == 1
    assert sample(samples, "nmr_auth_cache_hit_ratio") == 0.5
    services.auth.metrics.inc("auth_cache_requests_total", {"result": "hit"}, amount=2)
    samples, _ = parse_metrics(metrics_app.test_client().get("/-/metrics").text)
    assert sample(samples, "nmr_auth_cache_hit_ratio") == 0.75


def _requests_with_credentials(client) -> None:
    """A publish, a read and a failed call, each carrying a token as Bearer or Basic."""
    basic = base64.b64encode(f"alice:{BASIC_PASSWORD}".encode()).decode()
    body = publish_body(NAME, "1.0.0")
    assert client.put(f"/{escape(NAME)}", json=body, headers={"Authorization": f"Bearer {BEARER}"}).status_code == 201
    assert client.get(f"/{escape(NAME)}", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    with_query = client.get(f"/{escape(NAME)}?token={BEARER}", headers={"Authorization": f"Bearer {BEARER}"})
    assert with_query.status_code == 200
    assert client.delete(f"/-/user/token/{BEARER}").status_code == 200
    assert client.get("/-/whoami", headers={"Authorization": "Basic !!notbase64"}).status_code == 401


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_access_log_lines_name_the_login_and_never_a_token(client, caplog, fmt):
    caplog.set_level(logging.INFO, logger="nmr.access")
    _requests_with_credentials(client)
    records = [r for r in caplog.records if r.name == "nmr.access"]
    assert len(records) == 5
    formatter = make_formatter(fmt)
    lines = [formatter.format(r) for r in records]
    for line in lines:
        assert BEARER not in line and BASIC_PASSWORD not in line
        assert "Bearer" not in line and "Basic" not in line and "?" not in line.split('"')[1]
    if fmt == "json":
        assert isinstance(formatter, JsonFormatter)
        parsed = [json.loads(line) for line in lines]
        publish = parsed[0]
        assert publish["method"] == "PUT" and publish["path"] == "/@acme%2fops" and publish["status"] == 201
        assert publish["login"] == "anonymous" and publish["route"] == "publish"
        assert publish["bytes"] > 0 and publish["duration_ms"] >= 0
        assert parsed[2]["path"] == "/@acme%2fops"  # the query string is gone
        assert parsed[3]["path"] == "/-/user/token/***"
        assert parsed[4]["status"] == 401 and parsed[4]["login"] is None
    else:
        assert '"PUT /@acme%2fops" 201 ' in lines[0] and " anonymous " in lines[0]
        assert '"GET /@acme%2fops" 200 ' in lines[2]
        assert '"DELETE /-/user/token/***" 200 ' in lines[3]
        assert ' - "GET /-/whoami" 401 ' in lines[4]
    # Nothing else the app logged carries a credential either.
    for record in caplog.records:
        text = record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str)
        assert BEARER not in text and BASIC_PASSWORD not in text


def test_startup_log_names_backends_and_warns_for_auth_none(make_config, caplog):
    caplog.set_level(logging.INFO, logger="nmr")
    config = make_config(registry={"scopes": ["@acme", "@tools"]}, upstream={"mode": "off"})
    create_app(config).extensions["nmr"].close()
    ready = next(r for r in caplog.records if "ready:" in r.getMessage())
    text = ready.getMessage()
    assert f"metadata=leveldb ({config.get('metadata.leveldb.path')})" in text
    assert f"storage=local ({config.get('storage.local.path')})" in text
    assert "scopes=@acme, @tools" in text and "upstream=off" in text and "auth=none" in text
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "auth.type = 'none'" in warning.getMessage() and "ANYONE" in warning.getMessage()


def test_startup_log_never_prints_s3_secrets(make_config, caplog):
    from nmr.app import describe_backends

    config = make_config(
        storage={
            "type": "s3",
            "s3": {
                "bucket": "npm",
                "endpoint_url": "http://127.0.0.1:9000",
                "access_key_id": "AKIAEXAMPLEKEY",
                "secret_access_key": "very-secret-key",
            },
        }
    )

    class FakeServices:
        upstream = None

        class registry:
            @staticmethod
            def hosted_scopes_text() -> str:
                return "every @scope"

    described = describe_backends(config, FakeServices())  # type: ignore[arg-type]
    assert described["storage"] == "s3 (bucket='npm' prefix='' endpoint=http://127.0.0.1:9000)"
    assert "AKIAEXAMPLEKEY" not in str(described) and "very-secret-key" not in str(described)


def test_startup_log_strips_credentials_from_configured_urls(make_config):
    from nmr.app import describe_backends, safe_url

    assert safe_url("https://bot:s3cret@npm.example.com:8443/base/?token=abc#x") == "https://npm.example.com:8443/base/"
    assert safe_url("") == ""
    config = make_config(upstream={"mode": "proxy", "url": "https://bot:s3cret@npm.example.com/?t=t0ken-in-query"})

    class FakeServices:
        class upstream:
            url = "https://bot:s3cret@npm.example.com/?t=t0ken-in-query"

        class registry:
            @staticmethod
            def hosted_scopes_text() -> str:
                return "@acme"

    described = describe_backends(config, FakeServices())  # type: ignore[arg-type]
    assert described["upstream"] == "proxy https://npm.example.com/"
    assert "s3cret" not in str(described) and "t0ken-in-query" not in str(described)


def test_access_log_cannot_be_forged_through_a_login_name(client, caplog):
    caplog.set_level(logging.INFO, logger="nmr.access")
    forged = 'eve\n2026-01-01 00:00:00,000 INFO nmr.access: 10.0.0.1 admin "PUT /x" 201'
    r = client.put("/-/user/org.couchdb.user:eve", json={"name": forged, "password": "pw"})
    assert r.status_code == 201
    (record,) = [rec for rec in caplog.records if rec.name == "nmr.access"]
    line = make_formatter("plain").format(record)
    assert "\n" not in line and " eve?2026-01-01?00:00:00,000?INFO" in line
    assert record.fields["login"].startswith("eve?")  # type: ignore[attr-defined]
