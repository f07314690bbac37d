"""Forwarding of names this registry does not host to an upstream registry. Knows nothing of Flask.

``UpstreamRegistry`` is a caching mirror in the shape of devpi's (``devpi_server/mirror.py``):

* A packument is fetched once and kept as a cache entry in the metadata store (body, the
  time it was fetched, upstream's ETag), so it survives a restart. Within ``upstream.max_age``
  it is served without asking upstream; after that it is revalidated with ``If-None-Match``
  and a 304 only bumps ``fetched_at``. When upstream fails or times out, the stale copy is
  served (the view adds a ``Warning``); with nothing cached the answer is 503, never 404. An
  upstream 404 is cached as a negative entry for ``max_age``.
* Only the **full** packument is fetched; the abbreviated one is derived from it here. One
  upstream request and one cache entry per name serve both forms (npm install asks for the
  full document, pnpm and yarn for the abbreviated one), their tarball data can never disagree,
  and the tarball index that integrity checks need comes from the same document.
* Tarball URLs are rewritten to ``nmr.packument.BASE_PLACEHOLDER`` once, when the packument is
  fetched, so a read only swaps in the base URL (``nmr.packument.materialize``), as for hosted
  packages.
* One fetch per name at a time: a per-name lock; threads that waited for it use what the
  holder fetched instead of fetching again.
* Tarballs are downloaded once to a temp file while hashed, checked against the packument's
  ``dist.integrity`` (``dist.shasum`` when that is all there is) and only then stored under
  ``tarball_key``; later requests are served from storage, with or without upstream.
* Nothing of the client's request is sent upstream but the package name: no Authorization,
  no cookies. Hosted names are refused here too, as a second line behind the router.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import typing as t
import weakref
from urllib.parse import quote, urlsplit

import requests
from cachetools import LRUCache, TTLCache

from nmr import packument as pm
from nmr.config import ConfigError
from nmr.errors import NmrError, NotFound, Unavailable
from nmr.metadata import UpstreamHead, UpstreamRecord
from nmr.metrics import NULL_METRICS, Metrics
from nmr.names import unscoped
from nmr.storage import tarball_key

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from nmr.config import Config
    from nmr.metadata import MetadataStore
    from nmr.storage import TarballStorage

log = logging.getLogger(__name__)

STALE_WARNING = '110 - "Response is Stale"'
#: Versions that may become part of a storage key and a tarball URL path segment.
_SAFE_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,255}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_CHUNK = 256 * 1024
#: A fresh packument that lacks a requested version is refetched only if at least this old.
MISS_REFETCH_FLOOR = 2.0
#: Seconds upstream's signing keys are kept before they are asked for again.
KEYS_MAX_AGE = 3600
#: Largest tarball nmr will download from upstream (the public registry's own limit is far below).
MAX_TARBALL = 2 * 1024**3


class UpstreamMismatch(NmrError):
    """*502*: upstream sent a tarball whose bytes do not match its packument's integrity."""

    status = 502
    message = "the upstream registry sent a tarball that does not match its checksum; nothing was stored"


class UpstreamForeignTarball(NmrError):
    """*502*: the packument points the tarball at another host than the upstream registry."""

    status = 502


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


class _Failure(Exception):
    """Upstream could not give an answer (network error, timeout, 5xx, unreadable body)."""


@dataclasses.dataclass(frozen=True)
class Served:
    """A cached packument body ready to be materialised, and whether it is stale."""

    head: UpstreamHead
    body: bytes  # templated: holds BASE_PLACEHOLDER where nmr's base URL goes
    stale: bool


@dataclasses.dataclass(frozen=True)
class StoredTarball:
    key: str
    size: int
    stale: bool


# -- finding the default upstream ------------------------------------------------------------


def _npmrc_registry(path: str, environ: Mapping[str, str]) -> str | None:
    """The ``registry=`` value of one npmrc file (``${VAR}`` expanded as npm does), or None."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    found = None
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() == "registry":
            value = value.strip().strip("\"'")
            found = re.sub(r"\$\{([^}]+)\}", lambda m: environ.get(m.group(1), ""), value)
    return found or None


def _env_lookup(environ: Mapping[str, str], name: str) -> str | None:
    """npm reads ``npm_config_*`` variables case-insensitively."""
    for key, value in environ.items():
        if key.lower() == name and value:
            return value
    return None


def default_registry_url(environ: Mapping[str, str] | None = None, node: str | None = None) -> str | None:
    """The registry the machine's npm configuration names, or None.

    ``NPM_CONFIG_REGISTRY``/``npm_config_registry``, else ``registry=`` in the user npmrc
    (``NPM_CONFIG_USERCONFIG`` or ``~/.npmrc``), else in the global npmrc
    (``NPM_CONFIG_GLOBALCONFIG`` or ``<node prefix>/etc/npmrc``). npm's built-in default is
    deliberately not assumed: the operator's configuration decides where names go.
    """
    env = os.environ if environ is None else environ
    direct = _env_lookup(env, "npm_config_registry")
    if direct:
        return direct
    home = env.get("HOME") or os.path.expanduser("~")
    userconfig = _env_lookup(env, "npm_config_userconfig") or os.path.join(home, ".npmrc")
    found = _npmrc_registry(userconfig, env)
    if found:
        return found
    globalconfig = _env_lookup(env, "npm_config_globalconfig")
    if not globalconfig:
        prefix = _env_lookup(env, "npm_config_prefix")
        if not prefix:
            node = node or shutil.which("node", path=env.get("PATH"))
            if node:
                prefix = os.path.dirname(os.path.dirname(os.path.realpath(node)))
        globalconfig = os.path.join(prefix, "etc", "npmrc") if prefix else None
    return _npmrc_registry(globalconfig, env) if globalconfig else None


def make_upstream(
    config: Config,
    metadata: MetadataStore,
    storage: TarballStorage,
    is_hosted: Callable[[str], bool],
    environ: Mapping[str, str] | None = None,
) -> UpstreamRegistry | None:
    """The upstream of ``config``, or None when forwarding is off (mode off, or no URL found)."""
    mode = config.get("upstream.mode")
    if mode == "off":
        log.info('forwarding is off (upstream.mode = "off"): names this registry does not host answer 404')
        return None
    url = config.get("upstream.url")
    source = "upstream.url"
    if not url:
        url = default_registry_url(environ)
        source = "the npm configuration of this machine"
    if not url:
        log.warning(
            "forwarding is off: upstream.url is empty and this machine's npm configuration names no registry "
            "(NPM_CONFIG_REGISTRY, registry= in ~/.npmrc or the global npmrc); set upstream.url "
            "(or NMR_UPSTREAM__URL) to the registry that should serve names this registry does not host"
        )
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        if source == "upstream.url":
            raise ConfigError(f"upstream.url {url!r} must be an http(s) URL")
        log.warning(
            "forwarding is off: the registry %r named by %s is not an http(s) URL; set upstream.url "
            "(or NMR_UPSTREAM__URL) to the registry that should serve names this registry does not host",
            url,
            source,
        )
        return None
    log.info("forwarding names this registry does not host to %s (from %s, mode %s)", url, source, mode)
    return UpstreamRegistry(
        url,
        metadata=metadata,
        storage=storage,
        is_hosted=is_hosted,
        mode=mode,
        max_age=config.get("upstream.max_age"),
        timeout=config.get("upstream.timeout"),
    )


# -- pure functions on upstream packuments ---------------------------------------------------


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def abbreviate(doc: dict[str, t.Any], modified: str) -> dict[str, t.Any]:
    """The abbreviated ("corgi") packument of a full upstream one."""
    versions: dict[str, t.Any] = {}
    for version, manifest in doc.get("versions", {}).items():
        entry = {k: manifest[k] for k in pm.ABBREVIATED_FIELDS if k in manifest}
        scripts = manifest.get("scripts")
        if isinstance(scripts, dict) and any(s in scripts for s in pm.INSTALL_SCRIPTS):
            entry["hasInstallScript"] = True
        versions[version] = entry
    return {"name": doc.get("name"), "modified": modified, "dist-tags": doc.get("dist-tags", {}), "versions": versions}


def build_upstream_record(name: str, doc: dict[str, t.Any], validator: str, fetched_at: float) -> UpstreamRecord:
    """Template the tarball URLs of an upstream packument and derive what reads need."""
    doc = copy.copy(doc)
    raw_versions = doc.get("versions")
    versions: dict[str, t.Any] = {}
    index: dict[str, dict[str, str]] = {}
    for version, manifest in (raw_versions if isinstance(raw_versions, dict) else {}).items():
        if not isinstance(manifest, dict):
            continue
        raw_dist = manifest.get("dist")
        dist: dict[str, t.Any] = raw_dist if isinstance(raw_dist, dict) else {}
        url = dist.get("tarball")
        if isinstance(url, str) and _SAFE_VERSION.fullmatch(version) and urlsplit(url).scheme in ("http", "https"):
            integrity, shasum = dist.get("integrity"), dist.get("shasum")
            index[version] = {
                "url": url,
                "integrity": integrity if isinstance(integrity, str) else "",
                "shasum": shasum if isinstance(shasum, str) else "",
            }
            manifest = {**manifest, "dist": {**dist, "tarball": pm.tarball_url_template(name, version)}}
        versions[version] = manifest
    doc["versions"] = versions
    tags = doc.get("dist-tags")
    doc["dist-tags"] = {k: v for k, v in tags.items() if isinstance(v, str)} if isinstance(tags, dict) else {}
    time_ = doc.get("time")
    modified = time_.get("modified", "") if isinstance(time_, dict) else ""
    modified = modified if isinstance(modified, str) else ""
    full = pm.dump(doc)
    abbreviated = pm.dump(abbreviate(doc, modified))
    head = UpstreamHead(
        fetched_at=fetched_at,
        found=True,
        validator=validator,
        etag_full=_etag(full),
        etag_abbreviated=_etag(abbreviated),
        modified=modified,
    )
    index_body = pm.dump({"dist-tags": doc["dist-tags"], "versions": index})
    return UpstreamRecord(name=name, head=head, full=full, abbreviated=abbreviated, index=index_body)


def check_integrity(digests: dict[str, t.Any], integrity: str, shasum: str) -> bool | None:
    """Whether hashes of the bytes match ``integrity`` (SRI) or else ``shasum``; None: nothing to check.

    ``digests`` maps an algorithm (sha512, sha384, sha256, sha1) to a finished hashlib object.
    Every known algorithm in the SRI string must match (any one entry of it per algorithm).
    """
    wanted: dict[str, set[str]] = {}
    for entry in integrity.split():
        algo, _, value = entry.partition("-")
        if algo in digests:
            wanted.setdefault(algo, set()).add(value.split("?", 1)[0])
    if wanted:
        return all(base64.b64encode(digests[a].digest()).decode() in values for a, values in wanted.items())
    if shasum:
        return bool(digests["sha1"].hexdigest() == shasum.lower())
    return None


def strip_hosted_bulk(body: t.Any, is_hosted: Callable[[str], bool]) -> dict[str, t.Any]:
    """A bulk-advisory body (``{name: [versions]}``) without hosted names."""
    if not isinstance(body, dict):
        return {}
    return {k: v for k, v in body.items() if isinstance(k, str) and not is_hosted(k)}


def strip_hosted_tree(body: t.Any, is_hosted: Callable[[str], bool]) -> dict[str, t.Any]:
    """An npm6 audit tree (``{name, version, requires, dependencies}``) without hosted names, at any depth."""
    if not isinstance(body, dict):
        return {}
    out = dict(body)
    if isinstance(out.get("name"), str) and is_hosted(out["name"]):
        out["name"] = "project"  # the root project's own name stays home too
    if isinstance(out.get("requires"), dict):
        out["requires"] = {k: v for k, v in out["requires"].items() if not is_hosted(k)}
    if isinstance(out.get("dependencies"), dict):
        out["dependencies"] = {
            k: strip_hosted_tree(v, is_hosted) for k, v in out["dependencies"].items() if not is_hosted(k)
        }
    return out


# -- the mirror ------------------------------------------------------------------------------


class UpstreamRegistry:
    """Forwarding for names the registry does not host (SPEC §2, §6). Thread-safe."""

    #: Set by create_app; counts upstream fetches (see nmr.metrics).
    metrics: Metrics = NULL_METRICS

    def __init__(
        self,
        url: str,
        *,
        metadata: MetadataStore,
        storage: TarballStorage,
        is_hosted: Callable[[str], bool],
        mode: str = "proxy",
        max_age: float = 120,
        timeout: float = 30,
        clock: Callable[[], float] = time.time,
        log_interval: float = 300,
        retry_after_failure: float = 10,
    ) -> None:
        self.url = url.rstrip("/")
        self.mode = mode
        self.metadata = metadata
        self.storage = storage
        self.is_hosted = is_hosted
        self.max_age = max_age
        self.timeout = timeout
        self.clock = clock
        self._local = threading.local()
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()
        self._indexes: LRUCache[tuple[str, str], dict[str, t.Any]] = LRUCache(maxsize=512)
        self._indexes_lock = threading.Lock()
        self._logged: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=log_interval)
        self._logged_lock = threading.Lock()
        # After a failure, requests within retry_after_failure seconds get the stale copy at once
        # instead of each waiting for upstream's timeout again.
        self.retry_after_failure = retry_after_failure
        self._failures: LRUCache[str, float] = LRUCache(maxsize=10_000)
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._keys: tuple[float, bytes | None] | None = None
        self._keys_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        """One HTTP session per thread (requests sessions are not documented thread-safe)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = True  # proxies from the environment, as npm would use them
            session.headers.update({"User-Agent": "nmr (upstream forwarding)"})
            self._local.session = session
            self._sessions.add(session)
        return session

    def close(self) -> None:
        for session in list(self._sessions):
            session.close()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = threading.Lock()
                self._locks[key] = lock
            return lock

    def _warn_once(self, name: str, message: str, *args: t.Any) -> None:
        """Log an upstream problem once per name per ``log_interval``, not once per request."""
        with self._logged_lock:
            if name in self._logged:
                return
            self._logged[name] = True
        log.warning(message, *args)

    def packument_url(self, name: str) -> str:
        """``<upstream>/@scope%2fname`` as npm spells it."""
        return f"{self.url}/{quote(name, safe='@~!()*' + chr(39)).replace('%2F', '%2f')}"

    def url_for(self, path: str, query: str = "") -> str:
        """The same path upstream, for redirect mode (``path`` still percent-encoded)."""
        return self.url + path + (f"?{query}" if query else "")

    def _guard(self, name: str) -> None:
        if self.is_hosted(name):  # the router never sends these; refuse rather than leak a private name
            raise NotFound(f"{name} is hosted here and never looked up upstream")

    # -- packuments -----------------------------------------------------------------------

    def _fresh(self, head: UpstreamHead) -> bool:
        return 0 <= self.clock() - head.fetched_at < self.max_age

    def _index(self, name: str, head: UpstreamHead) -> dict[str, t.Any]:
        key = (name, head.etag_full)
        with self._indexes_lock:
            found = self._indexes.get(key)
        if found is None:
            stored = self.metadata.upstream_body(name, "index")
            found = json.loads(stored[1]) if stored and stored[1] else {"dist-tags": {}, "versions": {}}
            if stored and stored[0].etag_full == head.etag_full:
                with self._indexes_lock:
                    self._indexes[key] = found
        return found

    def _has(self, name: str, head: UpstreamHead, spec: str) -> bool:
        index = self._index(name, head)
        return spec in index["versions"] or spec in index["dist-tags"]

    def _fetch(self, name: str, head: UpstreamHead | None) -> UpstreamHead:
        """Ask upstream for the packument and store the answer. Raises ``_Failure``."""
        headers = {"Accept": "application/json"}
        if head is not None and head.found and head.validator:
            headers["If-None-Match"] = head.validator
        try:
            response = self._session().get(self.packument_url(name), headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            self.metrics.inc("upstream_fetches_total", {"kind": "packument", "result": "error"})
            raise _Failure(f"{type(exc).__name__}: {exc}") from None
        self.metrics.inc("upstream_fetches_total", {"kind": "packument", "result": str(response.status_code)})
        now = self.clock()
        if response.status_code == 304 and head is not None and "If-None-Match" in headers:
            self.metadata.touch_upstream(name, now)
            return dataclasses.replace(head, fetched_at=now)
        if response.status_code == 404:
            negative = UpstreamRecord(name, UpstreamHead(fetched_at=now, found=False), b"", b"", b"")
            self.metadata.put_upstream(negative)
            return negative.head
        if response.status_code != 200:
            raise _Failure(f"HTTP {response.status_code}")
        try:
            doc = response.json()
        except ValueError:
            raise _Failure("the answer is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("versions", {}), dict):
            raise _Failure("the answer is not a packument")
        record = build_upstream_record(name, doc, response.headers.get("ETag", ""), now)
        self.metadata.put_upstream(record)
        return record.head

    def _ensure(self, name: str, need: str | None = None) -> tuple[UpstreamHead, bool]:
        """A cache head for ``name`` that is fresh (refetching if needed), or stale when upstream fails.

        ``need``: a version or dist-tag the caller wants; a fresh entry without it is refetched
        at once, unless it was fetched less than ``MISS_REFETCH_FLOOR`` seconds ago (so requests
        for versions that do not exist cannot make nmr hammer upstream). Returns
        ``(head, stale)``; raises ``Unavailable`` with nothing usable cached.
        """
        self._guard(name)
        head = self.metadata.upstream_head(name)
        if head is not None and self._fresh(head) and (need is None or not head.found or self._has(name, head, need)):
            return head, False
        if head is not None and self._fresh(head) and self.clock() - head.fetched_at < MISS_REFETCH_FLOOR:
            return head, False  # fetched moments ago, and the version is not there
        started = self.clock()
        lock = self._lock_for(name)
        if not lock.acquire(timeout=2 * self.timeout + 1):
            return self._stale_or_unavailable(name, head, need, "another request has been fetching it too long")
        try:
            current = self.metadata.upstream_head(name)
            if current is not None and (
                head is None or current.fetched_at > head.fetched_at or current.fetched_at > started
            ):
                return current, False  # fetched while this request waited for the lock: no second fetch
            if self._failed_recently(name):
                return self._stale_or_unavailable(name, current, need, "it failed moments ago")
            try:
                fetched = self._fetch(name, current)
            except _Failure as exc:
                with self._logged_lock:
                    self._failures[name] = self.clock() + self.retry_after_failure
                return self._stale_or_unavailable(name, current, need, str(exc))
            with self._logged_lock:
                self._failures.pop(name, None)
            return fetched, False
        finally:
            lock.release()

    def _failed_recently(self, name: str) -> bool:
        """Whether upstream failed for ``name`` so recently that asking again would only add latency."""
        with self._logged_lock:
            until = self._failures.get(name)
        return until is not None and self.clock() < until

    def _stale_or_unavailable(
        self, name: str, head: UpstreamHead | None, need: str | None, why: str
    ) -> tuple[UpstreamHead, bool]:
        usable = head is not None and head.found and (need is None or self._has(name, head, need))
        self._warn_once(
            name,
            "upstream %s failed for %r (%s); %s",
            self.url,
            name,
            why,
            "serving the cached copy" if usable else "nothing usable cached, answering 503",
        )
        if usable and head is not None:
            return head, True
        raise Unavailable(
            f"the upstream registry cannot be reached for {name} and nmr has no cached copy"
            + (f" with {need}" if need else "")
            + "; try again shortly",
            retry_after=30,
        )

    def packument(self, name: str, *, abbreviated: bool) -> Served:
        """The cached (templated) packument of a forwarded name; 404 if upstream has none."""
        head, stale = self._ensure(name)
        if not head.found:
            raise NotFound(f"{name} is not in this registry or upstream")
        stored = self.metadata.upstream_body(name, "abbreviated" if abbreviated else "full")
        if stored is None or not stored[0].found:
            raise Unavailable(f"the cached packument of {name} changed while it was read; try again", retry_after=1)
        head, body = stored
        return Served(head=head, body=body, stale=stale)

    def manifest(self, name: str, spec: str) -> tuple[bytes, bool]:
        """One version (by number or dist-tag), templated, and whether it is stale."""
        head, stale = self._ensure(name, need=spec)
        if not head.found:
            raise NotFound(f"{name} is not in this registry or upstream")
        stored = self.metadata.upstream_body(name, "full")
        doc = json.loads(stored[1]) if stored and stored[1] else {}
        version = doc.get("dist-tags", {}).get(spec, spec)
        found = doc.get("versions", {}).get(version)
        if not isinstance(found, dict):
            raise NotFound(f"version not found: {name}@{spec}")
        return pm.dump(found), stale

    def dist_tags(self, name: str) -> tuple[dict[str, str], bool]:
        head, stale = self._ensure(name)
        if not head.found:
            raise NotFound(f"{name} is not in this registry or upstream")
        tags: dict[str, str] = self._index(name, head)["dist-tags"]
        return tags, stale

    # -- tarballs -------------------------------------------------------------------------

    def tarball(self, name: str, filename: str) -> StoredTarball:
        """The storage entry of a forwarded tarball, downloading and checking it on first use."""
        prefix = f"{unscoped(name)}-"
        if not filename.startswith(prefix) or not filename.endswith(".tgz"):
            raise NotFound(f"tarball not found: {name}/-/{filename}")
        version = filename[len(prefix) : -len(".tgz")]
        if not _SAFE_VERSION.fullmatch(version):
            raise NotFound(f"tarball not found: {name}/-/{filename}")
        self._guard(name)
        # A tarball already stored is served without asking upstream, even when the cached
        # packument is old: versions are immutable and the key is named by the tarball's hash.
        cached = self.metadata.upstream_head(name)
        if cached is not None and cached.found:
            info = self._index(name, cached)["versions"].get(version)
            if info is not None and self.storage.exists(key := self._tarball_key(name, version, info)):
                return StoredTarball(key, self.storage.size(key), stale=False)
        head, stale = self._ensure(name, need=version)
        if not head.found:
            raise NotFound(f"{name} is not in this registry or upstream")
        info = self._index(name, head)["versions"].get(version)
        if info is None:
            raise NotFound(f"version not found: {name}@{version}")
        key = self._tarball_key(name, version, info)
        if self.storage.exists(key):
            return StoredTarball(key, self.storage.size(key), stale)
        with self._lock_for("\0tarball\0" + key):
            if not self.storage.exists(key):  # another request stored it while this one waited
                self._download(name, version, info, key)
        return StoredTarball(key, self.storage.size(key), stale)

    @staticmethod
    def _tarball_key(name: str, version: str, info: dict[str, str]) -> str:
        shasum = info["shasum"].lower() if _HEX40.fullmatch(info["shasum"].lower()) else ""
        ident = shasum or hashlib.sha256(f"{info['integrity']}\0{info['url']}".encode()).hexdigest()
        return tarball_key(name, version, ident)

    def _download(self, name: str, version: str, info: dict[str, str], key: str) -> None:
        """Fetch a tarball to a temp file while hashing, verify it, then store it."""
        if _origin(info["url"]) != _origin(self.url):
            # A packument names the download URL; nmr fetches it server-side, so only the
            # upstream's own host is asked (no request to whatever address a packument names).
            self._warn_once(f"{name}@{version}", "upstream tarball %s is not on the upstream host", info["url"])
            raise UpstreamForeignTarball(
                f"the upstream packument of {name}@{version} points its tarball at another host than "
                "upstream.url; nmr only downloads from the upstream registry itself"
            )
        try:
            response = self._session().get(info["url"], stream=True, timeout=self.timeout)
        except requests.RequestException as exc:
            self._warn_once(f"{name}@{version}", "upstream tarball %s failed: %s", info["url"], exc)
            raise Unavailable(
                f"the upstream registry cannot be reached for the tarball of {name}@{version}; try again shortly"
            ) from None
        with response, tempfile.TemporaryFile(prefix="nmr-upstream-") as tmp:
            if response.status_code == 404:
                raise NotFound(f"tarball not found upstream: {name}@{version}")
            if response.status_code != 200:
                self._warn_once(f"{name}@{version}", "upstream tarball %s: HTTP %s", info["url"], response.status_code)
                raise Unavailable(
                    f"the upstream registry failed to send {name}@{version} (HTTP {response.status_code})"
                )
            digests = {algo: hashlib.new(algo) for algo in ("sha512", "sha384", "sha256", "sha1")}
            size = 0
            try:
                # iter_content undoes any transport Content-Encoding: the checksum is over the
                # .tgz bytes as published, which is what clients verify too.
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > MAX_TARBALL:
                        raise UpstreamMismatch(f"the upstream tarball of {name}@{version} is larger than 2 GiB")
                    for digest in digests.values():
                        digest.update(chunk)
                    tmp.write(chunk)
            except requests.RequestException as exc:
                self._warn_once(f"{name}@{version}", "upstream tarball %s broke off: %s", info["url"], exc)
                raise Unavailable(f"the download of {name}@{version} from upstream broke off; try again") from None
            verdict = check_integrity(digests, info["integrity"], info["shasum"])
            if verdict is not True:
                log.error(
                    "refused the upstream tarball of %s@%s from %s: %s",
                    name,
                    version,
                    info["url"],
                    "no checksum in the packument" if verdict is None else "checksum mismatch",
                )
                raise UpstreamMismatch(
                    f"the upstream tarball of {name}@{version} "
                    + ("has no checksum in its packument" if verdict is None else "does not match its dist.integrity")
                    + "; nmr refused it and stored nothing. Try again later or tell the registry operator"
                )
            tmp.seek(0)
            self.storage.put(key, t.cast("t.BinaryIO", tmp), size)
        log.info("cached upstream tarball %s@%s (%d bytes)", name, version, size)

    # -- signatures -----------------------------------------------------------------------

    def signing_keys(self) -> bytes | None:
        """Upstream's ``/-/npm/v1/keys``, kept for an hour (stale on failure); None: it has none.

        Forwarded packuments keep their ``dist.signatures`` (signed over name, version and
        integrity, none of which nmr changes), and ``npm audit signatures`` looks the keys up
        on the registry it is configured with: nmr.
        """
        with self._keys_lock:
            cached = self._keys
        if cached is not None and 0 <= self.clock() - cached[0] < KEYS_MAX_AGE:
            return cached[1]
        try:
            response = self._session().get(self.url + "/-/npm/v1/keys", timeout=self.timeout)
        except requests.RequestException as exc:
            response = None
            why = str(exc)
        if response is not None and response.status_code in (200, 404):
            body = response.content if response.status_code == 200 else None
            with self._keys_lock:
                self._keys = (self.clock(), body)
            return body
        if response is not None:
            why = f"HTTP {response.status_code}"
        self._warn_once("\0keys", "upstream signing keys failed (%s)", why)
        if cached is not None:
            return cached[1]
        raise Unavailable("the upstream registry cannot be reached for its signing keys; try again shortly")

    def attestations(self, name: str, version: str) -> bytes:
        """Upstream's provenance attestations of a forwarded ``name@version`` (not cached)."""
        self._guard(name)
        url = f"{self.url}/-/npm/v1/attestations/{quote(f'{name}@{version}', safe='@')}"
        try:
            response = self._session().get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            self._warn_once("\0attestations", "upstream attestations failed: %s", exc)
            raise Unavailable("the upstream registry cannot be reached for attestations; try again shortly") from None
        if response.status_code == 404:
            raise NotFound(f"no attestations for {name}@{version}")
        if response.status_code != 200:
            raise Unavailable(f"the upstream registry failed to send attestations (HTTP {response.status_code})")
        return response.content

    # -- audit ----------------------------------------------------------------------------

    def audit(self, path: str, body: bytes) -> bytes | None:
        """Forward an audit body (hosted names stripped) to ``path`` upstream; None: answer empty.

        ``path`` is one of the audit endpoints. Upstream failures, non-200 answers and bodies
        with nothing left to ask about all give None, and the caller answers "no advisories".
        """
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            return None
        if path.endswith("/advisories/bulk"):
            outgoing: dict[str, t.Any] = strip_hosted_bulk(parsed, self.is_hosted)
            if not outgoing:
                return None
        else:
            outgoing = strip_hosted_tree(parsed, self.is_hosted)
            if not outgoing.get("dependencies") and not outgoing.get("requires"):
                return None
        try:
            response = self._session().post(
                self.url + path,
                data=pm.dump(outgoing),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            self._warn_once("\0audit", "upstream audit %s failed: %s; answering no advisories", path, exc)
            return None
        if response.status_code != 200:
            self._warn_once(
                "\0audit", "upstream audit %s answered HTTP %s; answering no advisories", path, response.status_code
            )
            return None
        try:
            response.json()
        except ValueError:
            return None
        return response.content
