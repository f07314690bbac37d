"""End to end: nmr and Verdaccio on this machine in one run, plus the nginx static floor.

``python -m bench.run`` (``make bench``): installs wrk and nginx if missing, starts each registry
on loopback with fresh storage, then seeds and measures them one at a time (the other idles), runs
the cold installs taking turns (nmr, Verdaccio, nginx, nmr, ...), prints one table and writes the
JSON results to ``bench/out/``.
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
# Publishing is load too: the peak counts from the first PUT to the last install.
LOAD_PHASES = ("seed", *drive.HTTP_KINDS, "install")


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


@dataclasses.dataclass
class Target:
    """Something a cold install runs against: a registry (sampled) or the nginx floor."""

    name: str
    url: str
    token: str
    sampler: RssSampler | None = None
    job: install.ColdInstall | None = None


def start_registry(name: str, shared: Path, workdir: Path, nmr_auth: str) -> registries.Running:
    log(f"bench: {name}: starting")
    t0 = time.monotonic()
    running = (
        registries.start_nmr(workdir, auth=nmr_auth) if name == "nmr" else registries.start_verdaccio(shared, workdir)
    )
    log(f"bench: {name}: up at {running.url} in {time.monotonic() - t0:.1f} s")
    return running


def registry_result(running: registries.Running, rss: dict[str, float]) -> dict[str, t.Any]:
    """What belongs to a registry besides its measurements: memory and what it was."""
    info = dict(running.info)
    if running.name == "verdaccio":
        m = re.search(r"verdaccio/([\w.\-]+)", running.server.log_tail(20000))
        info["version"] = m.group(1) if m else "?"
    return {
        "rss_mib": rss,
        "peak_rss_under_load_mib": max((rss.get(p, 0.0) for p in LOAD_PHASES), default=0.0),
        "info": info,
    }


def floor_http(
    mirror: nginx.Mirror, dataset: seed.Dataset, workdir: Path, settings: drive.Settings
) -> dict[str, t.Any]:
    """The same reads served as static files by nginx: what no registry can beat.

    There is no abbreviated packument here (nginx has one file per name), so that row has no floor.
    """
    log("bench: nginx static floor")
    kinds = [k for k in drive.HTTP_KINDS if k != "packument_abbreviated"]
    # The same tarballs as the registries' wrk runs: those of the regular packages.
    paths = [p for name in dataset.names for p in mirror.tarball_paths[name]]
    return drive.measure_http(mirror.url, "unused-by-nginx", dataset, paths, workdir / "floor", settings, kinds=kinds)


def interleaved_installs(targets: list[Target], dataset: seed.Dataset, workdir: Path, runs: int) -> dict[str, str]:
    """Cold installs taking turns (A, B, C, A, B, C, ...), so drifting load hits all alike.

    A target whose install fails drops out; returns target name -> error.
    """
    failed: dict[str, str] = {}
    for target in targets:
        target.job = install.ColdInstall(target.url, target.token, dataset.names, workdir / f"install-{target.name}")
    for i in range(runs):
        for target in targets:
            if target.name in failed or target.job is None:
                continue
            if target.sampler:
                target.sampler.phase = "install"
            try:
                seconds = target.job.run()
                log(f"  npm install {i + 1}/{runs} from {target.name}: {seconds:.2f} s")
            except Exception as exc:
                log(f"bench: npm install from {target.name} failed: {exc}")
                failed[target.name] = str(exc)[-2000:]
            finally:
                if target.sampler:
                    target.sampler.phase = "idle"
    return failed


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
    # Both registries stay up for the whole run but are measured one at a time: an idle one
    # costs next to nothing, and keeping both lets the installs take turns at the end.
    running: dict[str, registries.Running] = {}
    samplers: dict[str, RssSampler] = {}
    targets: list[Target] = []
    nginx_server = None
    try:
        for name in wanted:
            try:
                running[name] = start_registry(name, shared, workdir, nmr_auth)
            except Exception as exc:  # one registry failing must not lose the other's figures
                log(f"bench: {name} failed to start: {exc}")
                results["registries"][name] = {"error": str(exc)[-2000:]}
                continue
            samplers[name] = RssSampler(running[name].server.pid)
            samplers[name].phase = "idle"
            samplers[name].start()
            targets.append(Target(name, running[name].url, running[name].token, samplers[name]))
        for target in list(targets):
            log(f"bench: {target.name}: measuring")
            assert target.sampler is not None
            sampler = target.sampler
            loadavg = os.getloadavg()  # other work on the machine skews every figure: keep it
            try:
                result = drive.measure(
                    target.url, target.token, dataset, workdir / target.name, settings, do_install=False,
                    on_phase=lambda phase, s=sampler: setattr(s, "phase", phase),
                )  # fmt: skip
            except Exception as exc:
                log(f"bench: {target.name} failed: {exc}")
                results["registries"][target.name] = {"error": str(exc)[-2000:]}
                targets.remove(target)
                continue
            finally:
                sampler.phase = "idle"
            result["loadavg_before"] = [round(x, 2) for x in loadavg]
            results["registries"][target.name] = result
        if targets and not args.no_floor:
            source = targets[-1]
            try:
                names = [*dataset.names, *([seed.MANY_NAME] if dataset.many else [])]
                log(f"bench: mirroring {len(names)} packuments from {source.name} for nginx")
                mirror = nginx.build_mirror(workdir, source.url, source.token, names)
                nginx_server = nginx.serve(mirror.root, mirror.port, "/" + escape_name(dataset.names[0]))
                results["floor"] = {"source": source.name, "http": floor_http(mirror, dataset, workdir, settings)}
                targets.append(Target("nginx", mirror.url, "unused-by-nginx"))
            except Exception as exc:  # the registries' figures still stand without it
                log(f"bench: nginx floor failed: {exc}")
                results["floor"] = {"error": str(exc)[-2000:]}
        if targets and settings.install_runs > 0:
            log(f"bench: cold npm installs, {settings.install_runs} rounds over {[x.name for x in targets]}")
            failed = interleaved_installs(targets, dataset, workdir, settings.install_runs)
            for target in targets:
                where = results["floor"] if target.name == "nginx" else results["registries"][target.name]
                if target.name in failed:
                    where["install_error"] = failed[target.name]
                    results.setdefault("notes", []).append(f"npm install from {target.name} failed: see the JSON")
                elif target.job and target.job.times:
                    where["install"] = target.job.summary()
    finally:
        if nginx_server:
            nginx_server.stop()
        for name, run in running.items():
            rss = samplers[name].stop()
            run.server.stop()
            results["registries"].setdefault(name, {}).update(registry_result(run, rss))
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
