"""A small, thread-safe metrics registry rendered in the Prometheus text exposition format (0.0.4).

Why not ``prometheus_client``: nmr needs counters, one histogram and two gauges, in one process
(LevelDB keeps gunicorn at one worker, so the multi-process mode that library exists for is
not needed). A hundred lines here keep the dependency list at what SPEC.md fixes.

How a backend reports (the GitHub, S3 and upstream backends use the same calls)::

    self.metrics.inc("github_api_calls_total", {"endpoint": "user", "status": "200"})
    self.metrics.inc("auth_cache_requests_total", {"result": "hit"})
    self.metrics.inc("storage_bytes_written_total", amount=len(data))
    self.metrics.observe("upstream_fetch_duration_seconds", 0.42, {"kind": "packument"})

``create_app`` sets ``metrics`` on every backend (``Authenticator``, ``TarballStorage``,
``MetadataStore`` and the upstream client) to the app's registry; until then it is
``NULL_METRICS``, which discards everything, so a backend never tests ``if metrics``.
Names get the ``nmr_`` prefix when they lack it. Label values must come from a small fixed
set (a route name, an HTTP status, ``hit``/``miss``): never a package name, a login, a URL
or anything derived from a token. A family stops taking new label sets at
``MAX_SERIES_PER_FAMILY`` so a mistake cannot grow memory without bound.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import typing as t

log = logging.getLogger(__name__)

PREFIX = "nmr_"
MAX_SERIES_PER_FAMILY = 500
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latency buckets (seconds): packument reads take milliseconds, publishes seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

Labels = t.Mapping[str, object] | None
_Key = tuple[tuple[str, str], ...]

#: The families nmr itself and its backends report, with their help text.
STANDARD: tuple[tuple[str, str, str], ...] = (
    ("http_requests_total", "counter", "HTTP requests answered, by route, method and status."),
    ("http_request_duration_seconds", "histogram", "Time from request start to last response byte, by route."),
    ("http_requests_in_flight", "gauge", "Requests being served now."),
    ("http_response_bytes_total", "counter", "Response body bytes sent, by route."),
    ("github_api_calls_total", "counter", "Calls to the GitHub API, by endpoint and status."),
    ("auth_cache_requests_total", "counter", "Auth decision cache look-ups, by result (hit, miss, stale)."),
    ("auth_cache_hit_ratio", "gauge", "Share of auth cache look-ups that were hits since start (hit / all)."),
    ("upstream_fetches_total", "counter", "Requests to the upstream registry, by kind and result."),
    ("storage_bytes_written_total", "counter", "Tarball bytes written to storage."),
    ("storage_bytes_read_total", "counter", "Tarball bytes read from storage and sent to clients."),
    ("process_start_time_seconds", "gauge", "Start time of the serving process since the Unix epoch."),
)


def _full_name(name: str) -> str:
    full = name if name.startswith(PREFIX) else PREFIX + name
    if not _NAME.fullmatch(full):
        raise ValueError(f"invalid metric name {name!r}")
    return full


def _key(labels: Labels) -> _Key:
    if not labels:
        return ()
    for label in labels:
        if not _LABEL.fullmatch(label) or label == "le":
            raise ValueError(f"invalid label name {label!r}")
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_labels(key: _Key, extra: tuple[str, str] | None = None) -> str:
    pairs = list(key) + ([extra] if extra else [])
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class _Family:
    def __init__(self, name: str, kind: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.buckets = buckets
        # counter/gauge: key -> value; histogram: key -> [bucket counts..., sum, count]
        self.series: dict[_Key, list[float]] = {}
        self.dropped = False

    def slot(self, key: _Key) -> list[float] | None:
        found = self.series.get(key)
        if found is None:
            if len(self.series) >= MAX_SERIES_PER_FAMILY:
                if not self.dropped:
                    self.dropped = True
                    log.warning("metric %s has %d label sets; dropping new ones", self.name, len(self.series))
                return None
            size = len(self.buckets) + 2 if self.kind == "histogram" else 1
            found = self.series[key] = [0.0] * size
        return found


class Metrics:
    """Counters, gauges and histograms; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        for name, kind, help_text in STANDARD:
            self.describe(name, kind, help_text)

    def describe(self, name: str, kind: str, help_text: str, buckets: t.Sequence[float] = DEFAULT_BUCKETS) -> None:
        """Declare a family (``counter``, ``gauge`` or ``histogram``) with its help text.

        Declaring is optional for counters: ``inc`` on an unknown name declares a counter.
        Re-declaring with the same kind only updates the help text.
        """
        if kind not in ("counter", "gauge", "histogram"):
            raise ValueError(f"unknown metric kind {kind!r}")
        full = _full_name(name)
        with self._lock:
            family = self._families.get(full)
            if family is not None and family.kind != kind:
                raise ValueError(f"metric {full} is a {family.kind}, not a {kind}")
            if family is None:
                self._families[full] = _Family(full, kind, help_text, tuple(sorted(buckets)))
            else:
                family.help = help_text

    def _family(self, name: str, default_kind: str) -> _Family:
        full = _full_name(name)
        family = self._families.get(full)
        if family is None:
            family = self._families[full] = _Family(full, default_kind, f"{full} (undocumented)", DEFAULT_BUCKETS)
        return family

    def inc(self, name: str, labels: Labels = None, amount: float = 1) -> None:
        """Add ``amount`` to a counter (``amount >= 0``) or a gauge."""
        key = _key(labels)
        with self._lock:
            family = self._family(name, "counter")
            if family.kind == "histogram":
                raise TypeError(f"{family.name} is a histogram: use observe()")
            if family.kind == "counter" and amount < 0:
                raise ValueError(f"counter {family.name} cannot go down")
            slot = family.slot(key)
            if slot is not None:
                slot[0] += amount

    def set(self, name: str, value: float, labels: Labels = None) -> None:
        """Set a gauge."""
        key = _key(labels)
        with self._lock:
            family = self._family(name, "gauge")
            if family.kind != "gauge":
                raise TypeError(f"{family.name} is a {family.kind}, not a gauge")
            slot = family.slot(key)
            if slot is not None:
                slot[0] = value

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        """Record one observation in a histogram (declare it first for other buckets)."""
        key = _key(labels)
        with self._lock:
            family = self._family(name, "histogram")
            if family.kind != "histogram":
                raise TypeError(f"{family.name} is a {family.kind}, not a histogram")
            slot = family.slot(key)
            if slot is None:
                return
            for i, bound in enumerate(family.buckets):
                if value <= bound:
                    slot[i] += 1
            slot[-2] += value
            slot[-1] += 1

    def value(self, name: str, labels: Labels = None) -> float:
        """A counter's or gauge's current value, or a histogram's count (0 if never touched)."""
        key = _key(labels)
        with self._lock:
            family = self._families.get(_full_name(name))
            slot = family.series.get(key) if family else None
            return 0.0 if slot is None else slot[-1] if family and family.kind == "histogram" else slot[0]

    def render(self) -> str:
        """Every family in the Prometheus text exposition format."""
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._families):
                family = self._families[name]
                help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {family.kind}")
                for key in sorted(family.series):
                    slot = family.series[key]
                    if family.kind != "histogram":
                        lines.append(f"{name}{_format_labels(key)} {_format_value(slot[0])}")
                        continue
                    # observe() counts into every bucket whose bound is >= the value: already cumulative.
                    for bound, count in zip(family.buckets, slot[: len(family.buckets)], strict=True):
                        le = ("le", _format_value(bound))
                        lines.append(f"{name}_bucket{_format_labels(key, le)} {_format_value(count)}")
                    inf = ("le", "+Inf")
                    lines.append(f"{name}_bucket{_format_labels(key, inf)} {_format_value(slot[-1])}")
                    lines.append(f"{name}_sum{_format_labels(key)} {_format_value(slot[-2])}")
                    lines.append(f"{name}_count{_format_labels(key)} {_format_value(slot[-1])}")
        return "\n".join(lines) + "\n"


class NullMetrics(Metrics):
    """Discards everything: the registry of a backend not wired to an app, and of ``metrics.enabled = false``."""

    def inc(self, name: str, labels: Labels = None, amount: float = 1) -> None:
        return None

    def set(self, name: str, value: float, labels: Labels = None) -> None:
        return None

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        return None


NULL_METRICS: Metrics = NullMetrics()
