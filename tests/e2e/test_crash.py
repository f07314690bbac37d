"""SIGKILL the server in the middle of concurrent publishes: after a restart, every listed
version has its tarball and its bytes match the recorded integrity."""

from __future__ import annotations

import signal
import threading
import time

import requests

from tests.builders import escape, integrity_of, make_tarball, publish_body

NAME = "@acme/crashy"


def test_kill_during_publishes_leaves_consistent_state(start_nmr):
    server = start_nmr()
    big = {"blob.bin": bytes(range(256)) * 4096}  # 1 MiB per version: publishes take a while
    bodies = [publish_body(NAME, f"1.0.{i}", tarball=make_tarball(NAME, f"1.0.{i}", files=big)) for i in range(24)]
    stop = threading.Event()

    def publisher(chunk):
        session = requests.Session()
        for body in chunk:
            if stop.is_set():
                return
            try:
                session.put(f"{server.url}/{escape(NAME)}", json=body, timeout=30)
            except requests.RequestException:
                return

    threads = [threading.Thread(target=publisher, args=(bodies[i::4],)) for i in range(4)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # kill once some, but not all, versions landed
        r = requests.get(f"{server.url}/{escape(NAME)}", timeout=5)
        if r.status_code == 200 and len(r.json()["versions"]) >= 4:
            break
        time.sleep(0.05)
    server.stop(sig=signal.SIGKILL)
    stop.set()
    for th in threads:
        th.join()

    server.start()
    doc = requests.get(f"{server.url}/{escape(NAME)}", timeout=10).json()
    assert len(doc["versions"]) >= 4
    for version, manifest in doc["versions"].items():
        tarball = requests.get(manifest["dist"]["tarball"], timeout=10)
        assert tarball.status_code == 200, version
        assert integrity_of(tarball.content) == manifest["dist"]["integrity"], version
    # The survivors can be published again: a killed publish leaves nothing half-written.
    for body in bodies:
        r = requests.put(f"{server.url}/{escape(NAME)}", json=body, timeout=30)
        assert r.status_code == 201, r.text
    assert len(requests.get(f"{server.url}/{escape(NAME)}", timeout=10).json()["versions"]) == 24
