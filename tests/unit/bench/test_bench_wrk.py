"""Parsing wrk's output and rendering the table: the pure parts of the benchmark."""

from __future__ import annotations

import json

import pytest

from bench.report import render_table
from bench.wrk import JSON_MARK, lua_script, parse_wrk_output

LATENCY_REPORT = """\
Running 3s test @ http://127.0.0.1:4873/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.21ms    2.31ms 140.00ms   90.00%
    Req/Sec     1.57k   150.00     1.80k    70.00%
  Latency Distribution
     50%  850.00us
     75%   10.50ms
     90%   12.00ms
     99%    1.20s
  9400 requests in 3.00s, 1.20MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   3130.50
Transfer/sec:    400.00KB
"""


def test_parse_latency_report():
    r = parse_wrk_output(LATENCY_REPORT)
    assert r["rps"] == 3130.5
    assert r["requests"] == 9400
    assert r["seconds"] == 3.0
    assert r["p50_ms"] == 0.85
    assert r["p90_ms"] == 12.0
    assert r["p99_ms"] == 1200.0
    assert r["non_2xx"] == 5
    assert r["errors"] == 8


def test_parse_prefers_the_json_line_from_our_script():
    raw = {
        "requests": 2000, "duration_us": 2_000_000, "bytes": 10, "p50_us": 1500,
        "p90_us": 2500, "p99_us": 9000, "mean_us": 1600.0, "max_us": 20000,
        "errors_connect": 0, "errors_read": 0, "errors_write": 0, "errors_status": 3,
        "errors_timeout": 0,
    }  # fmt: skip
    text = LATENCY_REPORT + JSON_MARK + json.dumps(raw) + "\n"
    r = parse_wrk_output(text)
    assert r["rps"] == 1000.0
    assert (r["p50_ms"], r["p99_ms"]) == (1.5, 9.0)
    assert r["non_2xx"] == r["errors"] == 3


def test_parse_rejects_output_without_figures():
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused")


def test_lua_script_lists_every_path():
    script = lua_script(["/@bench%2fa", "/@bench/a/-/a-1.0.0.tgz"])
    assert '"/@bench%2fa"' in script
    assert '"/@bench/a/-/a-1.0.0.tgz"' in script
    assert JSON_MARK in script
    with pytest.raises(ValueError, match="at least one path"):
        lua_script([])


def test_table_has_ratio_and_floor_rows():
    def reg(rps, install):
        return {
            "seed": {"versions_per_s": 100.0},
            "http": {"packument_full": {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}},
            "install": {"median_s": install},
            "peak_rss_under_load_mib": 50.0,
        }

    results = {
        "settings": {"seed_threads": 8, "install_runs": 3},
        "dataset": {"packages": 300, "many_versions": 0},
        "registries": {"nmr": reg(2000.0, 4.0), "verdaccio": reg(500.0, 8.0)},
        "floor": {"install": {"median_s": 2.0}, "http": {"packument_full": {"rps": 10000.0}}},
    }
    lines = render_table(results).splitlines()
    full = next(line for line in lines if "full packument, req/s" in line)
    assert "4.00x" in full
    floors = [line for line in lines if "floor: nginx" in line]
    assert len(floors) == 2
    assert "10,000 req/s" in floors[0]
    assert "0.20x floor" in floors[0]
    assert "0.05x floor" in floors[0]
    assert "2.00 s" in floors[1]
    assert "2.00x floor" in floors[1]
    assert "4.00x floor" in floors[1]
