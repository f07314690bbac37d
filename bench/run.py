"""End to end: nmr and Verdaccio on this machine in one run, plus the nginx static floor.

``python -m bench.run`` (``make bench``): installs wrk and nginx if missing, starts each registry
on loopback with fresh storage, seeds it, measures it, stops it, then prints one table and writes
the JSON results to ``bench/out/``. The registries run one after the other, never together, so
neither competes with the other for the machine's cores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from bench import drive, install, nginx, registries, seed, tools
from bench.procs import RssSampler
from bench.report import render_table
from bench.tarball import escape_name

OUT_DIR = registries.REPO_ROOT / "bench" / "out"
LOAD_PHASES = ("packument_full", "packument_abbreviated", "tarball", "packument_1000_versions",
               "install")  # fmt: skip


def _version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "?"
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else "?"


def machine_info() -> dict[str, t.Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1) if m else "?"
    commit = _version(["git", "-C", str(registries.REPO_ROOT), "rev-parse", "--short", "HEAD"])
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
        "node": _version(["node", "--version"]), "npm": _version(["npm", "--version"]),
        "wrk": _version(["wrk", "--version"]),
        "nginx": _version([tools.which("nginx") or "nginx", "-v"]),
        "commit": commit,
    }  # fmt: skip


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_registry(
    running: registries.Running, dataset: seed.Dataset, workdir: Path, settings: drive.Settings,
    mirror_for_nginx: bool,
) -> tuple[dict[str, t.Any], nginx.Mirror | None]:  # fmt: skip
    """Measure one started registry (and stop it). Optionally mirror it for nginx first."""
    # Other work on the machine skews every figure: keep the load it had when we started.
    loadavg = os.getloadavg()
    sampler = RssSampler(running.server.pid)
    sampler.start()
    mirror = None
    try:
        result = drive.measure(
            running.url, running.token, dataset, workdir / running.name, settings,
            on_phase=lambda phase: setattr(sampler, "phase", phase),
        )  # fmt: skip
        if mirror_for_nginx:
            sampler.phase = "mirror"
            names = [*dataset.names, *([seed.MANY_NAME] if dataset.many else [])]
            log(f"  mirroring {len(names)} packuments from {running.name} for nginx")
            mirror = nginx.build_mirror(workdir, running.url, running.token, names)
    finally:
        try:
            rss = sampler.stop()
        finally:
            running.server.stop()
    result["rss_mib"] = rss
    result["peak_rss_under_load_mib"] = max((rss.get(p, 0.0) for p in LOAD_PHASES), default=0.0)
    result["info"] = running.info
    result["loadavg_before"] = [round(x, 2) for x in loadavg]
    if running.name == "verdaccio":
        m = re.search(r"verdaccio/([\w.\-]+)", running.server.log_tail(20000))
        result["info"]["version"] = m.group(1) if m else "?"
    return result, mirror


def measure_floor(
    mirror: nginx.Mirror, dataset: seed.Dataset, workdir: Path, settings: drive.Settings
) -> dict[str, t.Any]:
    """The same reads and install served as static files by nginx: what no registry can beat.

    There is no abbreviated packument here (nginx has one file per name), so that row has no
    floor.
    """
    log("bench: nginx static floor")
    server = nginx.serve(mirror.root, mirror.port, "/" + escape_name(dataset.names[0]))
    out: dict[str, t.Any] = {"url": mirror.url}
    try:
        kinds = [k for k in drive.HTTP_KINDS if k != "packument_abbreviated"]
        out["http"] = drive.measure_http(
            mirror.url, "unused-by-nginx", dataset, mirror.tarball_paths, workdir / "floor",
            settings, kinds=kinds,
        )  # fmt: skip
        if settings.install_runs > 0:
            out["install"] = install.npm_install(
                mirror.url, "unused-by-nginx", dataset.names, workdir / "floor-install",
                runs=settings.install_runs,
            )  # fmt: skip
            log(f"  npm install: {out['install']['runs']} s")
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=("nmr", "verdaccio"), help="measure one registry")
    p.add_argument(
        "--nmr-auth",
        choices=("auto", "github", "none"),
        default="auto",
        help="nmr's auth.type (auto: github with the fake GitHub when both exist)",
    )
    p.add_argument("--no-floor", action="store_true", help="skip the nginx static-file floor")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    drive.add_size_args(p)
    args = p.parse_args(argv)
    settings, sizes = drive.settings_from(args)

    tools.ensure_tools()
    shared = tools.find_shared(registries.REPO_ROOT)
    log(f"bench: building the data set {sizes}")
    dataset = seed.build_dataset(**sizes)
    workdir = Path(tempfile.mkdtemp(prefix="nmr-bench-"))
    started = dt.datetime.now(dt.UTC)
    results: dict[str, t.Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": dataclasses.asdict(settings),
        "dataset": dataset.describe(),
        "registries": {},
    }
    wanted = [args.only] if args.only else ["nmr", "verdaccio"]
    if "nmr" in wanted and not registries.nmr_available():
        log("bench: nmr/cli.py is not in this checkout yet; measuring Verdaccio only")
        wanted.remove("nmr")
        results["notes"] = ["nmr not measured: no nmr/cli.py in this checkout"]
    nmr_auth = args.nmr_auth
    if nmr_auth == "auto":
        nmr_auth = "github" if registries.github_auth_available() else "none"
    mirror = None
    try:
        for i, name in enumerate(wanted):
            log(f"bench: {name}: starting")
            t0 = time.monotonic()
            try:
                running = (
                    registries.start_nmr(workdir, auth=nmr_auth)
                    if name == "nmr"
                    else registries.start_verdaccio(shared, workdir)
                )
                log(f"bench: {name}: up at {running.url} in {time.monotonic() - t0:.1f} s")
                last = i == len(wanted) - 1
                result, built = bench_registry(
                    running, dataset, workdir, settings,
                    mirror_for_nginx=last and not args.no_floor,
                )  # fmt: skip
            except Exception as exc:  # one registry failing must not lose the other's figures
                log(f"bench: {name} failed: {exc}")
                results["registries"][name] = {"error": str(exc)[-2000:]}
                continue
            mirror = built or mirror
            results["registries"][name] = result
            if built:
                results["floor_source"] = name
        if mirror:
            try:
                results["floor"] = measure_floor(mirror, dataset, workdir, settings)
                results["floor"]["source"] = results.get("floor_source")
            except Exception as exc:  # the registries' figures still stand without it
                log(f"bench: nginx floor failed: {exc}")
                results["floor"] = {"error": str(exc)[-2000:]}
    finally:
        results["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        text = json.dumps(results, indent=2) + "\n"
        (args.out_dir / f"results-{stamp}.json").write_text(text)
        (args.out_dir / "latest.json").write_text(text)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"bench: work directory kept in {workdir}")
    table = render_table(results)
    (args.out_dir / "latest.txt").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
