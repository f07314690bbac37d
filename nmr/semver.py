"""The part of semver 2.0.0 a registry needs: validate a version and order versions."""

from __future__ import annotations

import functools
import re

_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_VERSION_RE = re.compile(
    rf"({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
MAX_LENGTH = 256


def is_valid(version: str) -> bool:
    return len(version) <= MAX_LENGTH and _VERSION_RE.fullmatch(version) is not None


def is_prerelease(version: str) -> bool:
    m = _VERSION_RE.fullmatch(version)
    return bool(m and m.group(4))


def _key(version: str) -> tuple[tuple[int, int, int], tuple[tuple[int, int | str], ...] | None]:
    m = _VERSION_RE.fullmatch(version)
    if not m:
        raise ValueError(f"not a semver version: {version!r}")
    core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    pre = m.group(4)
    if not pre:
        return core, None
    ids: list[tuple[int, int | str]] = []
    for part in pre.split("."):
        ids.append((0, int(part)) if part.isdigit() else (1, part))
    return core, tuple(ids)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` (build metadata ignored)."""
    (ca, pa), (cb, pb) = _key(a), _key(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa == pb:
        return 0
    if pa is None:
        return 1
    if pb is None:
        return -1
    return -1 if pa < pb else 1


def sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=functools.cmp_to_key(compare))


def highest(versions: list[str], *, stable_first: bool = True) -> str | None:
    """The highest version, preferring non-prerelease ones when ``stable_first``."""
    if not versions:
        return None
    ordered = sort_versions(versions)
    if stable_first:
        stable = [v for v in ordered if not is_prerelease(v)]
        if stable:
            return stable[-1]
    return ordered[-1]
