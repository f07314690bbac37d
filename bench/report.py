"""Turn the JSON results into the one table people read."""

from __future__ import annotations

import typing as t

from bench import drive

RATIO_NOTE = "ratio = nmr / Verdaccio. Higher is better for req/s and versions/s; lower is better for ms, s and MiB."


def _get(doc: dict[str, t.Any] | None, *keys: str) -> t.Any:
    node: t.Any = doc
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _fmt(value: t.Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return str(value)


def _ratio(a: t.Any, b: t.Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        r = a / b
        return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"  # 0.0018x, not 0.00x
    return ""


def rows(results: dict[str, t.Any]) -> list[tuple[str, t.Any, t.Any, tuple[str, ...]]]:
    """(figure, nmr value, Verdaccio value, keys of the nginx floor or ()) for each line."""
    nmr = results.get("registries", {}).get("nmr")
    ver = results.get("registries", {}).get("verdaccio")
    ds = results.get("dataset", {})
    out: list[tuple[str, t.Any, t.Any, tuple[str, ...]]] = []

    def add(label: str, *keys: str, floor: bool = False) -> None:
        out.append((label, _get(nmr, *keys), _get(ver, *keys), keys if floor else ()))

    threads = _get(results, "settings", "seed_threads")
    add(f"publish throughput, versions/s ({threads} threads)", "seed", "versions_per_s")
    if ds.get("many_versions"):
        add(f"publish {ds['many_versions']} versions of one package, versions/s",
            "seed", "many_versions_per_s")  # fmt: skip
        tenth = max(1, ds["many_versions"] // 10)
        add(f"  the last {tenth} of them, ms per publish", "seed", "many_last_tenth_ms_avg")
    http = [
        ("packument_full", "full packument"),
        ("packument_abbreviated", "abbreviated packument"),
        ("tarball", "tarball"),
        ("packument_1000_versions", f"{ds.get('many_versions', 1000)}-version packument"),
    ]
    for key, label in http:
        if key == "packument_1000_versions" and not ds.get("many_versions"):
            continue
        add(f"{label}, req/s", "http", key, "rps", floor=True)
        add(f"{label}, p50 ms", "http", key, "p50_ms")
        add(f"{label}, p99 ms", "http", key, "p99_ms")
    runs = _get(results, "settings", "install_runs")
    add(f"cold npm install of {ds.get('packages')} packages, s (median of {runs})",
        "install", "median_s", floor=True)  # fmt: skip
    add("peak RSS under load, MiB", "peak_rss_under_load_mib")
    return out


def render_table(results: dict[str, t.Any]) -> str:
    lines = [("figure", "nmr", "Verdaccio", "ratio")]
    for label, a, b, floor_keys in rows(results):
        if label.startswith("  ") and a is None and b is None:
            continue  # a detail row the saved run predates
        lines.append((label, _fmt(a), _fmt(b), _ratio(a, b)))
        floor = _get(results, "floor", *floor_keys) if floor_keys else None
        if isinstance(floor, int | float) and floor:
            unit = label.rsplit(", ", 1)[-1].split(" ")[0]
            rel = [f"{_ratio(v, floor)} floor" if _ratio(v, floor) else "" for v in (a, b)]
            lines.append((f"  floor: nginx static files, {_fmt(float(floor))} {unit}", *rel, ""))
    widths = [max(len(row[i]) for row in lines) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    text = [line(lines[0]), rule, *(line(row) for row in lines[1:])]
    notes = [RATIO_NOTE]
    auths = [f"{name} {_get(doc, 'info', 'auth')}" for name, doc in results.get("registries", {}).items()]
    if auths:
        notes.append("auth: " + "; ".join(auths))
    for name, doc in results.get("registries", {}).items():
        if isinstance(doc, dict) and doc.get("error"):
            notes.append(f"{name} failed: {doc['error'].splitlines()[0][:200]}")
        errors = sum(_get(doc, "http", k, "errors") or 0 for k in drive.HTTP_KINDS)
        if errors:
            notes.append(f"{name}: {errors} wrk requests failed or were not 2xx/3xx: see the JSON")
        anonymous = _get(doc, "responses", "anonymous_packument_status")
        if anonymous == 200:
            notes.append(f"{name} served a packument without a token (200): reads not checked")
        if _get(doc, "info", "auth") == "none":
            notes.append(f"{name} ran with auth.type = none: no token checks (Verdaccio checks a JWT)")
    notes.extend(results.get("notes", []))
    return "\n".join([headline(results), "", *text, "", *notes])


def headline(results: dict[str, t.Any]) -> str:
    """One line saying what was compared, with what data and load, on what machine."""
    ds, st, mc = (results.get(k, {}) for k in ("dataset", "settings", "machine"))
    version = _get(results, "registries", "verdaccio", "info", "version") or "?"
    return (
        f"nmr {mc.get('commit', '?')} vs Verdaccio {version}: {ds.get('packages')} packages x "
        f"{ds.get('versions_per_package')} versions (~{ds.get('tarball_bytes_avg', 0) // 1024} KB "
        f"tarballs); wrk {st.get('threads')} threads, {st.get('connections')} connections, "
        f"{st.get('duration')} s; {mc.get('cpus')} CPUs ({mc.get('cpu')}), node {mc.get('node')}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report [RESULTS.json]``: print the table of a saved run again."""
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(__file__).parent / "out" / "latest.json"
    print(render_table(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
