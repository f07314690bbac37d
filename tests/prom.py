"""A strict reader of the Prometheus text exposition format (0.0.4), for tests of ``/-/metrics``."""

from __future__ import annotations

import re

_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'  # a quoted label value with \\, \" and \n escapes
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*=" + _VALUE + r",?)*)\})? (\S+)")
_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=(" + _VALUE + ")")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> tuple[Samples, dict[str, str]]:
    """``(samples, types)``; raises AssertionError on any line the format does not allow."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    samples: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"two TYPE lines for {name}"
            types[name] = kind
            continue
        m = _SAMPLE.fullmatch(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.groups()
        labels = frozenset(
            (k, re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), v[1:-1]))
            for k, v in _LABEL.findall(labels_text or "")
        )
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} before its TYPE line"
        key = (name, labels)
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value.replace("+Inf", "inf"))
    return samples, types


def sample(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value, 0 when absent (a counter never touched is not listed)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)
