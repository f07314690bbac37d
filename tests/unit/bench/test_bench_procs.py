"""The install project and the /proc readers of the benchmark (no registry, no npm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.drive import is_loopback
from bench.install import write_project
from bench.procs import RssSampler, process_tree, rss_kib


def test_project_has_scope_registry_and_token_for_its_host(tmp_path):
    write_project(tmp_path, "http://127.0.0.1:4873", "tok", ["@bench/a", "@bench/b"])
    npmrc = (tmp_path / ".npmrc").read_text().splitlines()
    assert npmrc == ["@bench:registry=http://127.0.0.1:4873/", "//127.0.0.1:4873/:_authToken=tok"]
    deps = json.loads((tmp_path / "package.json").read_text())["dependencies"]
    assert deps == {"@bench/a": "^1.0.0", "@bench/b": "^1.0.0"}


def test_process_tree_and_rss_see_our_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in process_tree(os.getpid())
        assert rss_kib(child.pid) > 0
        sampler = RssSampler(os.getpid(), interval=0.01)
        sampler.phase = "load"
        sampler.start()
        peaks = sampler.stop()
        assert peaks["load"] > 0
        assert peaks["peak"] == peaks["load"]
    finally:
        child.kill()
        child.wait()
    assert rss_kib(child.pid) == 0


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:4873", True),
        ("http://127.8.0.1/", True),
        ("http://localhost:3000/npm/", True),
        ("http://[::1]:3000", True),
        ("http://10.0.0.5:4873", False),
        ("https://registry.example.com/", False),
    ],
)
def test_load_goes_to_loopback_only(url, ok):
    assert is_loopback(url) is ok
