"""Pure functions on a package's internal document and the bytes rendered from it. No I/O.

The internal document is a dict shaped like a full packument (``versions``, ``dist-tags``,
``time``, ``maintainers``, ``users``, ``readme``) plus an ``nmr`` section the registry keeps
for itself (repository binding, tarball index, tombstones of unpublished versions). Every
write loads it, changes it with the functions here, and stores it with ``build_record``,
which renders the full and abbreviated packuments once, at write time.

Tarball URLs depend on the public base URL, which may come from the request when
``server.public_url`` is unset, so rendered bodies hold ``BASE_TOKEN`` where the base goes;
``materialize`` swaps it in (and the result is cached by the API layer).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import typing as t

import orjson

from nmr import semver
from nmr.metadata import PackageHead, PackageRecord, TarballEntry
from nmr.names import tarball_filename

#: Stands for the public base URL inside stored bodies. JSON always escapes control
#: characters, so this 16-byte sequence cannot be produced by a name or version.
BASE_PLACEHOLDER = "\u0001nmr-base\u0001"
BASE_TOKEN = json.dumps(BASE_PLACEHOLDER)[1:-1].encode()

#: Copied from the latest version to the top of the full packument, as the npm registry does.
COPIED_UP = (
    "description",
    "author",
    "repository",
    "homepage",
    "bugs",
    "license",
    "keywords",
    "contributors",
)

#: Per-version fields of the abbreviated ("corgi") packument.
ABBREVIATED_FIELDS = (
    "name",
    "version",
    "dist",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "bundledDependencies",
    "acceptDependencies",
    "bin",
    "directories",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "_hasShrinkwrap",
    "hasInstallScript",
    "_npmUser",
)
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")
#: Fields a client may not set in a version: the server computes or moves them.
SERVER_FIELDS = (
    "dist",
    "_npmUser",
    "_hasShrinkwrap",
    "hasInstallScript",
    "readme",
    "readmeFilename",
    "_id",
)

Document = dict[str, t.Any]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_document(name: str) -> Document:
    return {
        "name": name,
        "versions": {},
        "dist-tags": {},
        "time": {},
        "maintainers": [],
        "users": {},
        "readme": "",
        "readmeFilename": "",
        "nmr": {"repository": None, "tarballs": {}, "tombstones": {}, "unpublished": None},
    }


def load_document(data: bytes) -> Document:
    try:
        doc: Document = orjson.loads(data)
    except orjson.JSONDecodeError:  # what only the stdlib reads: big integers, NaN, lone surrogates
        doc = json.loads(data)
    return doc


def dump(obj: t.Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes what ``json.dumps(ensure_ascii=False, separators=(",",
    ":"))`` writes (a float like 1e-07 is spelled 1e-7) about ten times faster, which matters
    because every write re-encodes the whole document and both packuments (1.3 MB for 1,000
    versions)."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        # Integers over 64 bits, or a lone surrogate ("\ud800" is valid JSON in a publish body,
        # but cannot be written as UTF-8): the stdlib with \u escapes writes both.
        return json.dumps(obj, separators=(",", ":")).encode()


def tarball_url_template(name: str, version: str) -> str:
    """``<base>/@scope/name/-/name-1.0.0.tgz`` with the base as ``BASE_PLACEHOLDER``."""
    return f"{BASE_PLACEHOLDER}/{name}/-/{tarball_filename(name, version)}"


def known_versions(doc: Document) -> set[str]:
    """Every version ever published, including unpublished ones (their numbers stay taken)."""
    return set(doc["versions"]) | set(doc["nmr"]["tombstones"])


def apply_publish(
    doc: Document,
    *,
    manifest: dict[str, t.Any],
    tags: list[str],
    dist: dict[str, t.Any],
    tarball: TarballEntry,
    publisher: dict[str, str],
    has_shrinkwrap: bool,
    readme: tuple[str, str] | None,
    now: str,
) -> None:
    """Add (or, when allowed, replace) one version in ``doc``."""
    name, version = doc["name"], manifest["version"]
    entry = {k: v for k, v in manifest.items() if k not in SERVER_FIELDS}
    entry["_id"] = f"{name}@{version}"
    entry["dist"] = dist
    entry["_npmUser"] = publisher
    if has_shrinkwrap:
        entry["_hasShrinkwrap"] = True
    scripts = entry.get("scripts")
    if isinstance(scripts, dict) and any(s in scripts for s in INSTALL_SCRIPTS):
        entry["hasInstallScript"] = True
    if not doc["maintainers"]:
        doc["maintainers"] = [publisher]
    entry["maintainers"] = doc["maintainers"]
    doc["versions"][version] = entry
    doc["nmr"]["tarballs"][version] = {
        "key": tarball.key,
        "size": tarball.size,
        "integrity": tarball.integrity,
    }
    doc["nmr"]["unpublished"] = None
    for tag in tags:
        doc["dist-tags"][tag] = version
    if "latest" not in doc["dist-tags"]:
        doc["dist-tags"]["latest"] = version
    if doc["dist-tags"].get("latest") == version and readme is not None:
        doc["readme"], doc["readmeFilename"] = readme
    doc["time"].setdefault("created", now)
    doc["time"][version] = now
    doc["time"]["modified"] = now


def apply_deprecations(doc: Document, versions: dict[str, t.Any], now: str) -> int:
    """Apply ``deprecated`` from a metadata-update body; return how many versions changed.

    Only versions present on both sides are touched; a non-empty string sets the message,
    ``""`` clears it, a missing key leaves the version alone. Nothing else is read.
    """
    changed = 0
    for version, body in versions.items():
        current = doc["versions"].get(version)
        if current is None or not isinstance(body, dict) or "deprecated" not in body:
            continue
        message = body["deprecated"]
        if not isinstance(message, str):
            continue
        if message and current.get("deprecated") != message:
            current["deprecated"] = message
            changed += 1
        elif not message and "deprecated" in current:
            del current["deprecated"]
            changed += 1
    if changed:
        doc["time"]["modified"] = now
    return changed


def _repair_latest(doc: Document) -> None:
    tags = doc["dist-tags"]
    if "latest" not in tags and doc["versions"]:
        best = semver.highest(list(doc["versions"]))
        if best is not None:
            tags["latest"] = best


def apply_unpublish(doc: Document, removed: set[str], now: str) -> list[TarballEntry]:
    """Remove ``removed`` versions, leave tombstones, fix dist-tags; return their tarballs."""
    gone: list[TarballEntry] = []
    for version in sorted(removed):
        if version not in doc["versions"]:
            continue
        del doc["versions"][version]
        doc["time"].pop(version, None)
        info = doc["nmr"]["tarballs"].get(version)
        if info:
            gone.append(TarballEntry(key=info["key"], size=info.get("size", 0)))
        doc["nmr"]["tarballs"][version] = {"key": "", "size": 0, "integrity": "", "gone": True}
        doc["nmr"]["tombstones"][version] = now
    doc["dist-tags"] = {t_: v for t_, v in doc["dist-tags"].items() if v not in removed}
    _repair_latest(doc)
    if not doc["versions"]:
        doc["nmr"]["unpublished"] = {"time": now, "versions": sorted(removed)}
        doc["dist-tags"] = {}
        doc["readme"], doc["readmeFilename"] = "", ""
    doc["time"]["modified"] = now
    return gone


def set_dist_tag(doc: Document, tag: str, version: str, now: str) -> bool:
    if doc["dist-tags"].get(tag) == version:
        return False
    doc["dist-tags"][tag] = version
    doc["time"]["modified"] = now
    return True


def remove_dist_tag(doc: Document, tag: str, now: str) -> bool:
    if tag not in doc["dist-tags"]:
        return False
    del doc["dist-tags"][tag]
    doc["time"]["modified"] = now
    return True


def set_users(doc: Document, users: dict[str, t.Any], login: str, now: str) -> bool:
    """Star/unstar: only the caller's own entry in ``users`` may change."""
    starred = bool(users.get(login))
    if starred == bool(doc["users"].get(login)):
        return False
    if starred:
        doc["users"][login] = True
    else:
        doc["users"].pop(login, None)
    doc["time"]["modified"] = now
    return True


def exists(doc: Document) -> bool:
    return bool(doc["versions"])


def rev_string(name: str, rev: int, modified: str) -> str:
    digest = hashlib.sha256(f"{name}\0{rev}\0{modified}".encode()).hexdigest()[:16]
    return f"{rev}-{digest}"


def parse_rev(rev: str) -> int | None:
    head, _, _ = rev.partition("-")
    return int(head) if head.isdigit() else None


def full_packument(doc: Document, rev: int) -> dict[str, t.Any]:
    """The full packument (with ``_rev``) as a dict, tarball URLs templated."""
    name = doc["name"]
    out: dict[str, t.Any] = {
        "_id": name,
        "_rev": rev_string(name, rev, doc["time"].get("modified", "")),
        "name": name,
    }
    latest = doc["versions"].get(doc["dist-tags"].get("latest", ""))
    if latest:
        for field in COPIED_UP:
            if field in latest:
                out[field] = latest[field]
    out["dist-tags"] = doc["dist-tags"]
    out["versions"] = doc["versions"]
    out["time"] = doc["time"]
    out["maintainers"] = doc["maintainers"]
    out["users"] = doc["users"]
    if doc["readme"]:
        out["readme"] = doc["readme"]
        out["readmeFilename"] = doc["readmeFilename"]
    out["_attachments"] = {}
    return out


def abbreviated_packument(doc: Document) -> dict[str, t.Any]:
    versions = {v: {k: m[k] for k in ABBREVIATED_FIELDS if k in m} for v, m in doc["versions"].items()}
    return {
        "name": doc["name"],
        "modified": doc["time"].get("modified", ""),
        "dist-tags": doc["dist-tags"],
        "versions": versions,
    }


def search_summary(doc: Document) -> dict[str, t.Any] | None:
    latest_version = doc["dist-tags"].get("latest")
    latest = doc["versions"].get(latest_version or "")
    if not latest:
        return None
    maintainers = [{"username": m.get("name", ""), "email": m.get("email", "")} for m in doc["maintainers"]]
    publisher = latest.get("_npmUser") or {}
    keywords = latest.get("keywords")
    return {
        "name": doc["name"],
        "version": latest_version,
        "description": latest.get("description", "") if isinstance(latest.get("description"), str) else "",
        "keywords": [k for k in keywords if isinstance(k, str)] if isinstance(keywords, list) else [],
        "date": doc["time"].get(latest_version) or doc["time"].get("modified"),
        "publisher": {"username": publisher.get("name", ""), "email": publisher.get("email", "")},
        "maintainers": maintainers,
        "repository": doc["nmr"]["repository"],
    }


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def build_record(doc: Document, rev: int) -> PackageRecord:
    """Render everything the read path needs from ``doc`` at revision ``rev``."""
    name = doc["name"]
    full = dump(full_packument(doc, rev))
    abbreviated = dump(abbreviated_packument(doc))
    summary = search_summary(doc)
    tarballs = {
        v: TarballEntry(
            key=e.get("key", ""),
            size=e.get("size", 0),
            integrity=e.get("integrity", ""),
            gone=bool(e.get("gone")),
        )
        for v, e in doc["nmr"]["tarballs"].items()
    }
    head = PackageHead(
        rev=rev,
        etag_full=_etag(full),
        etag_abbreviated=_etag(abbreviated),
        modified=doc["time"].get("modified", ""),
        repository=doc["nmr"]["repository"],
        exists=exists(doc),
    )
    return PackageRecord(
        name=name,
        head=head,
        document=dump(doc),
        full=full,
        abbreviated=abbreviated,
        tarballs=tarballs,
        summary=dump(summary) if summary else None,
    )


def materialize(body: bytes, base_url: str) -> bytes:
    """Put the public base URL into a stored body."""
    return body.replace(BASE_TOKEN, json.dumps(base_url)[1:-1].encode())


def manifest_for(doc: Document, spec: str) -> dict[str, t.Any] | None:
    """One version by number or dist-tag (``GET /pkg/<version|tag>``)."""
    version = doc["dist-tags"].get(spec, spec)
    found = doc["versions"].get(version)
    return copy.deepcopy(found) if found is not None else None


def write_document(doc: Document, rev: int) -> dict[str, t.Any]:
    """The ``?write=true`` document: the full packument, templated like the stored one."""
    return full_packument(doc, rev)
