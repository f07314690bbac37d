"""An S3 emulator for tests: ``moto.server`` run as a subprocess on 127.0.0.1.

boto3 talks real HTTP to it, so connection handling, timeouts, retries, streaming and
presigned URLs are exercised as they are against a real endpoint (moto's in-process
``mock_aws`` would patch all of that away). ``stop()``/``start()`` kill the emulator and bring
it back on the same port, for outage tests; moto keeps its state in memory, so a restarted
emulator is empty. ``pause()``/``resume()`` freeze it instead (SIGSTOP/SIGCONT): connections
are accepted but never answered, the "hung endpoint" case.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request

if t.TYPE_CHECKING:
    from collections.abc import Iterator

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never read a developer's real profiles, never probe an instance metadata service.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: Variables that would make boto3 use something other than ``FAKE_AWS_ENV``.
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """One ``python -m moto.server`` process; ``url`` is its endpoint."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None, "already running"
        env = {**os.environ, **FAKE_AWS_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"moto server exited at start (port {self.port} taken?)")
            if self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {timeout} s")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as resp:
                resp.read()
        except urllib.error.HTTPError:
            return True  # any HTTP answer means it is serving
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Kill the emulator (SIGKILL: an abrupt outage, not a graceful shutdown)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # in case it was paused
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_moto() -> Iterator[MotoServer]:
    """A started emulator, killed (by its pid) on exit."""
    for attempt in range(3):
        server = MotoServer()
        try:
            server.start()
        except RuntimeError:
            # Another process took the free port between probing and binding: pick another.
            if attempt == 2:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return
