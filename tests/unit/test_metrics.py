from __future__ import annotations

import threading

import pytest

from nmr import metrics as metrics_module
from nmr.metrics import NULL_METRICS, Metrics
from tests.prom import parse_metrics, sample


def test_counters_with_labels_render_in_the_text_format():
    m = Metrics()
    m.inc("github_api_calls_total", {"endpoint": "user", "status": "200"})
    m.inc("github_api_calls_total", {"status": "200", "endpoint": "user"}, amount=2)
    m.inc("nmr_github_api_calls_total", {"endpoint": "user", "status": "401"})
    samples, types = parse_metrics(m.render())
    assert types["nmr_github_api_calls_total"] == "counter"
    assert sample(samples, "nmr_github_api_calls_total", endpoint="user", status="200") == 3
    assert sample(samples, "nmr_github_api_calls_total", endpoint="user", status="401") == 1
    assert "# HELP nmr_github_api_calls_total Calls to the GitHub API" in m.render()


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    m = Metrics()
    for value in (0.003, 0.02, 0.02, 7.0, 100.0):
        m.observe("http_request_duration_seconds", value, {"route": "tarball"})
    samples, types = parse_metrics(m.render())
    assert types["nmr_http_request_duration_seconds"] == "histogram"

    def bucket(le: str) -> float:
        return sample(samples, "nmr_http_request_duration_seconds_bucket", route="tarball", le=le)

    assert bucket("0.005") == 1
    assert bucket("0.025") == 3
    assert bucket("5") == 3
    assert bucket("10") == 4
    assert bucket("60") == 4
    assert bucket("+Inf") == 5
    assert sample(samples, "nmr_http_request_duration_seconds_count", route="tarball") == 5
    assert sample(samples, "nmr_http_request_duration_seconds_sum", route="tarball") == pytest.approx(107.043)


def test_label_values_are_escaped():
    m = Metrics()
    m.inc("odd_total", {"v": 'a"b\\c\nd'})
    text = m.render()
    assert 'v="a\\"b\\\\c\\nd"' in text
    samples, types = parse_metrics(text)
    assert types["nmr_odd_total"] == "counter"
    assert sample(samples, "nmr_odd_total", v='a"b\\c\nd') == 1


def test_misuse_is_refused():
    m = Metrics()
    with pytest.raises(ValueError, match="cannot go down"):
        m.inc("storage_bytes_written_total", amount=-1)
    with pytest.raises(TypeError, match="histogram"):
        m.inc("http_request_duration_seconds")
    with pytest.raises(TypeError, match="not a histogram"):
        m.observe("storage_bytes_written_total", 1.0)
    with pytest.raises(ValueError, match="invalid metric name"):
        m.inc("bad-name")
    with pytest.raises(ValueError, match="invalid label name"):
        m.inc("x_total", {"le": "1"})
    with pytest.raises(ValueError, match="is a counter, not a gauge"):
        m.describe("storage_bytes_written_total", "gauge", "no")


def test_gauges_go_up_and_down():
    m = Metrics()
    m.inc("http_requests_in_flight")
    m.inc("http_requests_in_flight")
    m.inc("http_requests_in_flight", amount=-1)
    m.set("process_start_time_seconds", 1700000000.5)
    samples, _ = parse_metrics(m.render())
    assert sample(samples, "nmr_http_requests_in_flight") == 1
    assert sample(samples, "nmr_process_start_time_seconds") == 1700000000.5


def test_label_sets_per_family_are_capped(monkeypatch):
    monkeypatch.setattr(metrics_module, "MAX_SERIES_PER_FAMILY", 3)
    m = Metrics()
    for i in range(10):
        m.inc("leaky_total", {"name": f"pkg{i}"})
    samples, _ = parse_metrics(m.render())
    assert len([k for k in samples if k[0] == "nmr_leaky_total"]) == 3
    m.inc("leaky_total", {"name": "pkg0"})
    assert m.value("leaky_total", {"name": "pkg0"}) == 2


def test_concurrent_increments_are_not_lost():
    m = Metrics()

    def work() -> None:
        for _ in range(2000):
            m.inc("auth_cache_requests_total", {"result": "hit"})
            m.observe("http_request_duration_seconds", 0.01, {"route": "packument"})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert m.value("auth_cache_requests_total", {"result": "hit"}) == 16000
    assert m.value("http_request_duration_seconds", {"route": "packument"}) == 16000


def test_null_metrics_discards_everything():
    NULL_METRICS.inc("github_api_calls_total", {"endpoint": "user", "status": "200"})
    NULL_METRICS.observe("http_request_duration_seconds", 1.0)
    NULL_METRICS.set("process_start_time_seconds", 1.0)
    samples, _ = parse_metrics(NULL_METRICS.render())
    assert samples == {}
