"""Measure one registry, given its URL and a bearer token: seed, HTTP load, cold install.

Registry-agnostic: it speaks only the npm protocol. Usage::

    python -m bench.drive --registry http://127.0.0.1:4873 --token TOKEN [--packages 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import sys
import time
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench import install, seed, wrk
from bench.tarball import escape_name

HTTP_KINDS = ("packument_full", "packument_abbreviated", "tarball", "packument_1000_versions")
ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


@dataclasses.dataclass
class Settings:
    """How hard and how long to measure (defaults: the full-size run)."""

    duration: float = 10
    warmup: float = 2
    connections: int = 32
    threads: int = 2
    install_runs: int = 3
    seed_threads: int = 8


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def npm_headers(token: str) -> dict[str, str]:
    """The headers npm sends on every install request (npm-protocol.md §1.3)."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept-Encoding": "gzip",
        "User-Agent": "npm/10.9.0 node/v20.0.0 linux x64 workspaces/false",
        "npm-command": "install",
    }


def probe(url: str, token: str, dataset: seed.Dataset) -> dict[str, t.Any]:
    """Check every endpoint answers 200 and collect the tarball paths the registry emits.

    Also records the response size and encoding of each kind, since they explain the figures.
    """
    s = requests.Session()
    s.headers.update(npm_headers(token))
    tarball_paths: list[str] = []
    for name in dataset.names:
        resp = s.get(f"{url}/{escape_name(name)}", headers={"Accept": "application/json"}, timeout=60)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {name} -> {resp.status_code}: {resp.text[:200]}")
        for manifest in resp.json()["versions"].values():
            tarball_paths.append(urlsplit(manifest["dist"]["tarball"]).path)
    samples = {
        "packument_full": (f"/{escape_name(dataset.names[0])}", "application/json"),
        "packument_abbreviated": (f"/{escape_name(dataset.names[0])}", ABBREVIATED),
        "tarball": (tarball_paths[0], "*/*"),
    }
    if dataset.many:
        samples["packument_1000_versions"] = (f"/{escape_name(seed.MANY_NAME)}", "application/json")
    shapes = {}
    for kind, (path, accept) in samples.items():
        resp = s.get(url + path, headers={"Accept": accept}, stream=True, timeout=60)
        raw = resp.raw.read(decode_content=False)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path} ({kind}) -> {resp.status_code}")
        shapes[kind] = {
            "content_type": resp.headers.get("Content-Type"),
            "content_encoding": resp.headers.get("Content-Encoding", "identity"),
            "wire_bytes": len(raw),
        }
    # Proof that reads are really access-checked: the same packument without a token.
    anonymous = requests.get(f"{url}/{escape_name(dataset.names[0])}", timeout=60)
    shapes["anonymous_packument_status"] = anonymous.status_code
    return {"tarball_paths": tarball_paths, "responses": shapes}


def measure_http(
    url: str, token: str, dataset: seed.Dataset, tarball_paths: list[str], workdir: Path,
    settings: Settings, on_phase: t.Callable[[str], None] = lambda _: None,
    kinds: t.Container[str] = HTTP_KINDS,
) -> dict[str, t.Any]:  # fmt: skip
    """wrk at fixed concurrency on each read endpoint (``kinds``), rotating across names."""
    packuments = [f"/{escape_name(n)}" for n in dataset.names]
    phases: list[tuple[str, list[str], str]] = [
        ("packument_full", packuments, "application/json"),
        ("packument_abbreviated", packuments, ABBREVIATED),
        ("tarball", tarball_paths, "*/*"),
    ]
    if dataset.many:
        phases.append(("packument_1000_versions", [f"/{escape_name(seed.MANY_NAME)}"], "application/json"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, paths, accept in phases:
        if name not in kinds:
            continue
        on_phase(name)
        headers = npm_headers(token) | {"Accept": accept}
        script = workdir / f"wrk-{name}.lua"
        common = {"connections": settings.connections, "threads": settings.threads}
        if settings.warmup > 0:
            wrk.run_wrk(url, paths, headers, script, duration=settings.warmup, **common)
        results[name] = wrk.run_wrk(url, paths, headers, script, duration=settings.duration, **common)
        r = results[name]
        log(
            f"  {name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
            + (f", {r['errors']} errors" if r["errors"] else "")
        )
    return results


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(
    url: str, token: str, dataset: seed.Dataset, workdir: Path, settings: Settings,
    do_seed: bool = True, do_install: bool = True,
    on_phase: t.Callable[[str], None] = lambda _: None, allow_remote: bool = False,
) -> dict[str, t.Any]:  # fmt: skip
    """Everything for one registry; returns the JSON-able results.

    Load goes to loopback only, unless ``allow_remote`` (a registry you own, on purpose).
    """
    if not allow_remote and not is_loopback(url):
        raise ValueError(f"{url} is not on this machine; pass --allow-remote if you mean to load it")
    url = url.rstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, t.Any] = {"url": url}
    if do_seed:
        on_phase("seed")
        log(f"  seeding {len(dataset.packages)} packages + {len(dataset.many)} versions ...")
        out["seed"] = seed.seed(url, token, dataset, threads=settings.seed_threads)
        s = out["seed"]
        log(f"  publish: {s['versions_per_s']} versions/s ({s['versions']} in {s['seconds']} s)")
    on_phase("probe")
    probed = probe(url, token, dataset)
    out["responses"] = probed["responses"]
    out["http"] = measure_http(url, token, dataset, probed["tarball_paths"], workdir, settings, on_phase)
    if do_install and settings.install_runs > 0:
        on_phase("install")
        out["install"] = install.npm_install(url, token, dataset.names, workdir / "install", runs=settings.install_runs)
        log(f"  npm install: {out['install']['runs']} s")
    return out


def add_size_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--packages", type=int, default=300, help="packages to seed (default 300)")
    p.add_argument("--versions", type=int, default=3, help="versions per package (default 3)")
    p.add_argument(
        "--many-versions",
        type=int,
        default=1000,
        help="versions of the one big package (default 1000; 0 = none)",
    )
    p.add_argument("--tarball-kb", type=int, default=20, help="tarball size in KB (default 20)")
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds before each (default 2)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--install-runs", type=int, default=3, help="cold npm installs (default 3)")
    p.add_argument("--seed-threads", type=int, default=8)
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short development run: 30 packages, 100 versions, 3 s wrk, 1 install",
    )


def settings_from(args: argparse.Namespace) -> tuple[Settings, dict[str, int]]:
    if args.quick:
        args.packages, args.many_versions = min(args.packages, 30), min(args.many_versions, 100)
        args.duration, args.warmup, args.install_runs = 3, 1, min(args.install_runs, 1)
    settings = Settings(
        args.duration,
        args.warmup,
        args.connections,
        args.threads,
        args.install_runs,
        args.seed_threads,
    )
    sizes = {
        "packages": args.packages,
        "versions": args.versions,
        "many_versions": args.many_versions,
        "tarball_size": args.tarball_kb * 1024,
    }
    return settings, sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.drive", description=__doc__.split("\n")[0])
    p.add_argument("--registry", required=True, help="base URL, e.g. http://127.0.0.1:4873")
    p.add_argument("--token", required=True, help="bearer token for reads and publishes")
    p.add_argument("--skip-seed", action="store_true", help="the data set is already there")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--allow-remote", action="store_true", help="allow a registry that is not on 127.0.0.1")
    p.add_argument("--workdir", type=Path, default=Path("bench/out/work"))
    p.add_argument("--out", type=Path, help="write the JSON results here")
    add_size_args(p)
    args = p.parse_args(argv)
    settings, sizes = settings_from(args)
    dataset = seed.build_dataset(**sizes)
    started = time.time()
    result = measure(
        args.registry,
        args.token,
        dataset,
        args.workdir,
        settings,
        do_seed=not args.skip_seed,
        do_install=not args.no_install,
        allow_remote=args.allow_remote,
    )
    result["dataset"] = dataset.describe()
    result["started"] = started
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
