"""Start and stop the processes the benchmark owns, and sample their memory from /proc.

Every server is started in its own session (its own process group), so stopping it signals
that group only, never anything by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import typing as t
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A child process in its own process group, with its log in a file."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._on_stop: list[t.Callable[[], None]] = []
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float, ok: t.Callable[[int], bool] = lambda s: s < 500):
        """Wait until ``url`` answers (any status ``ok`` accepts), or fail with the log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if ok(requests.get(url, timeout=2).status_code):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout:.0f}s:\n{self.log_tail()}")

    def on_stop(self, callback: t.Callable[[], None]) -> None:
        """Run ``callback`` after the process is stopped (e.g. stop a helper it needed)."""
        self._on_stop.append(callback)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM our process group, then SIGKILL it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Children that outlived the leader (gunicorn workers) are still in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        for callback in self._on_stop:
            callback()


def _parent_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (e.g. the gunicorn master and its workers)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples the summed RSS of a process tree every ``interval`` s; keeps the peak per phase.

    Summing RSS counts pages shared between a forked master and its worker twice: an upper
    bound, the same rule for both registries.
    """

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.root = root
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self._halt = threading.Event()

    def sample(self) -> int:
        return sum(rss_kib(p) for p in process_tree(self.root))

    def run(self) -> None:
        while True:  # at least one sample, however soon stop() comes
            kib = self.sample()
            phase = self.phase
            if kib > self.peaks.get(phase, 0):
                self.peaks[phase] = kib
            if self._halt.wait(self.interval):
                return

    def stop(self) -> dict[str, float]:
        """Stop sampling; return the peaks in MiB per phase and overall (``peak``)."""
        self._halt.set()
        self.join(5)
        out = {k: round(v / 1024, 1) for k, v in self.peaks.items()}
        out["peak"] = max(out.values(), default=0.0)
        return out
