"""The benchmark data set and the parallel seeder that publishes it over the npm protocol."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.tarball import escape_name, make_manifest, make_tarball, publish_body

SCOPE = "@bench"  # Verdaccio's anchor config protects @bench/* (authenticated access)
MANY_NAME = f"{SCOPE}/many-versions"


@dataclasses.dataclass(frozen=True)
class Release:
    """One version of one package: its manifest and tarball bytes."""

    name: str
    version: str
    manifest: dict[str, t.Any]
    tarball: bytes


@dataclasses.dataclass
class Dataset:
    """What every registry gets: ``packages`` (name -> releases in publish order) and ``many``."""

    packages: dict[str, list[Release]]
    many: list[Release]

    @property
    def names(self) -> list[str]:
        return list(self.packages)

    def describe(self) -> dict[str, t.Any]:
        sizes = [r.tarball.__len__() for rs in self.packages.values() for r in rs]
        return {
            "packages": len(self.packages),
            "versions_per_package": len(next(iter(self.packages.values()), [])),
            "tarball_bytes_avg": round(sum(sizes) / len(sizes)) if sizes else 0,
            "many_versions_package": MANY_NAME if self.many else None,
            "many_versions": len(self.many),
        }


def build_dataset(
    packages: int = 300,
    versions: int = 3,
    many_versions: int = 1000,
    tarball_size: int = 20 * 1024,
    many_tarball_size: int = 1024,
    repository: str = "git+https://github.com/bench/packages.git",
) -> Dataset:
    """Build the seed data in memory (deterministic: the same arguments give the same bytes).

    The 1,000-version package gets small tarballs: what it measures is the packument size.
    """

    def release(name: str, version: str, size: int) -> Release:
        manifest = make_manifest(name, version, repository)
        return Release(name, version, manifest, make_tarball(manifest, size))

    pkgs = {
        f"{SCOPE}/pkg-{i:04d}": [release(f"{SCOPE}/pkg-{i:04d}", f"1.0.{v}", tarball_size) for v in range(versions)]
        for i in range(packages)
    }
    many = [release(MANY_NAME, f"1.{i // 100}.{i % 100}", many_tarball_size) for i in range(many_versions)]
    return Dataset(pkgs, many)


class PublishError(RuntimeError):
    pass


class Publisher:
    """Publishes releases to one registry with one bearer token, a session per thread."""

    def __init__(self, registry: str, token: str, timeout: float = 60) -> None:
        self.registry = registry.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers.update(
                {
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    "npm-command": "publish",
                    "User-Agent": "nmr-bench (npm/10 compatible)",
                }
            )
            self._local.session = s
        return s

    def publish(self, rel: Release) -> None:
        body = json.dumps(publish_body(rel.manifest, rel.tarball, self.registry))
        url = f"{self.registry}/{escape_name(rel.name)}"
        resp = self._session().put(url, data=body, timeout=self.timeout)
        if resp.status_code not in (200, 201):
            raise PublishError(f"PUT {url} ({rel.version}) -> {resp.status_code}: {resp.text[:300]}")

    def publish_package(self, releases: list[Release]) -> int:
        """Publish one package's versions in order (one package is never written concurrently)."""
        for rel in releases:
            self.publish(rel)
        return len(releases)


def seed(registry: str, token: str, dataset: Dataset, threads: int = 8) -> dict[str, t.Any]:
    """Publish the data set; return the timings (the publish throughput is the main figure).

    The regular packages go through a thread pool, one task per package; the many-version
    package is then published alone, version after version, as a release train would.
    """
    pub = Publisher(registry, token)
    result: dict[str, t.Any] = {"threads": threads}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seed") as pool:
        count = sum(pool.map(pub.publish_package, dataset.packages.values()))
    elapsed = time.perf_counter() - t0
    result |= {
        "versions": count,
        "seconds": round(elapsed, 3),
        "versions_per_s": round(count / elapsed, 2) if elapsed else None,
    }
    if dataset.many:
        # Time each PUT: how the cost of one publish grows with the packument is the point here.
        each = []
        for rel in dataset.many:
            t1 = time.perf_counter()
            pub.publish(rel)
            each.append(time.perf_counter() - t1)
        elapsed = sum(each)
        tenth = max(1, len(each) // 10)
        result |= {
            "many_versions": len(dataset.many),
            "many_seconds": round(elapsed, 3),
            "many_versions_per_s": round(len(dataset.many) / elapsed, 2),
            "many_first_tenth_ms_avg": round(1000 * sum(each[:tenth]) / tenth, 1),
            "many_last_tenth_ms_avg": round(1000 * sum(each[-tenth:]) / tenth, 1),
        }
    return result
