"""The registry service: every read and write on hosted packages. Knows nothing of Flask.

Each public method takes the caller's ``Identity`` and asks the ``Authenticator`` before it
reads or changes anything. Writes are read-modify-write loops over the metadata store's
compare-and-swap, so two writers on one package never lose each other's update.

Ordering rules that keep a crash harmless:

* publish: tarball to storage first (immutable, content-addressed key), then metadata. A crash
  in between leaves an orphan blob, never metadata pointing at a missing tarball.
* unpublish: metadata first (tombstone), then the tarball is deleted. A crash in between
  leaves an orphan blob, never a listed version without its tarball.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import threading
import typing as t

from cachetools import LRUCache

from nmr import packument as pm
from nmr.auth import Action, Authenticator, Identity, Repository
from nmr.errors import BadRequest, Conflict, Forbidden, Gone, NotFound, Unauthorized, Unavailable
from nmr.names import scope_of, validate_name, validate_tag, validate_version, version_from_filename
from nmr.publish import PublishRequest, is_publish, validate_publish
from nmr.storage import tarball_key

if t.TYPE_CHECKING:
    from nmr.config import Config
    from nmr.metadata import MetadataStore, PackageHead, TarballEntry
    from nmr.storage import TarballStorage

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 50
GZIP_MIN_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A packument body ready to send, for one base URL."""

    body: bytes
    gzipped: bytes | None
    etag: str
    modified: str


def final_etag(template_etag: str, base_url: str) -> str:
    """The ETag of a body after the base URL is put in (cheap: no body needed)."""
    return '"' + hashlib.sha256(f"{template_etag}\0{base_url}".encode()).hexdigest()[:40] + '"'


class RenderCache:
    """Materialised packument bodies by (name, form, template ETag, base), bounded by bytes."""

    def __init__(self, max_bytes: int = 256 * 1024**2) -> None:
        self._cache: LRUCache[tuple[str, bool, str, str], Rendered] = LRUCache(
            maxsize=max_bytes,
            getsizeof=lambda r: len(r.body) + len(r.gzipped or b"") + 200,
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, bool, str, str]) -> Rendered | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: tuple[str, bool, str, str], value: Rendered) -> None:
        if len(value.body) * 2 > self._cache.maxsize:
            return
        with self._lock:
            self._cache[key] = value


class Registry:
    """Hosted-package operations (SPEC §4) over a metadata store, tarball storage and auth."""

    def __init__(
        self,
        config: Config,
        metadata: MetadataStore,
        storage: TarballStorage,
        auth: Authenticator,
    ) -> None:
        self.metadata = metadata
        self.storage = storage
        self.auth = auth
        self.scopes: list[str] = list(config.get("registry.scopes"))
        self.allow_previous_version: bool = config.get("settings.allow_previous_version")
        self.renders = RenderCache()

    # -- names -----------------------------------------------------------------------------

    def is_hosted(self, name: str) -> bool:
        """Scoped names in ``registry.scopes`` (every scope when the list is empty)."""
        scope = scope_of(name)
        return scope is not None and (not self.scopes or scope in self.scopes)

    def hosted_scopes_text(self) -> str:
        return ", ".join(self.scopes) if self.scopes else "every @scope"

    def require_hosted_write(self, name: str) -> None:
        if not self.is_hosted(name):
            raise Forbidden(
                f"{name} cannot be published here: this registry hosts {self.hosted_scopes_text()} "
                "only; publish it under a hosted scope"
            )
        validate_name(name)

    # -- identity --------------------------------------------------------------------------

    def identify(self, token: str | None) -> Identity:
        return self.auth.identify(token)

    def whoami(self, identity: Identity) -> str:
        if identity.anonymous or identity.login is None:
            raise Unauthorized("not logged in: add a GitHub token as _authToken for this registry")
        return identity.login

    def login(self, username: str, password: str) -> str:
        return self.auth.login(username, password)

    # -- reads -----------------------------------------------------------------------------

    def _head(self, identity: Identity, name: str, action: Action) -> PackageHead:
        """Authorise ``action`` on ``name`` and return its head; 404 if there is no package."""
        head = self.metadata.head(name)
        repository = Repository.from_json(head.repository) if head else None
        self.auth.authorize(identity, action, name, repository)
        if head is None or not head.exists:
            raise NotFound(f"{name} is not in this registry" if head is None else f"{name} was unpublished")
        return head

    def packument(
        self,
        identity: Identity,
        name: str,
        *,
        abbreviated: bool,
        base_url: str,
        if_none_match: t.Callable[[str], bool] | None = None,
    ) -> Rendered | str:
        """The packument, or just its ETag (a str) when ``if_none_match`` accepts it (a 304)."""
        head = self._head(identity, name, Action.READ)
        template_etag = head.etag_abbreviated if abbreviated else head.etag_full
        etag = final_etag(template_etag, base_url)
        if if_none_match is not None and if_none_match(etag):
            return etag
        key = (name, abbreviated, template_etag, base_url)
        rendered = self.renders.get(key)
        if rendered is None:
            stored = self.metadata.body(name, abbreviated)
            if stored is None:  # raced with a full unpublish
                raise NotFound(f"{name} is not in this registry")
            body = pm.materialize(stored, base_url)
            gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= GZIP_MIN_SIZE else None
            rendered = Rendered(body=body, gzipped=gzipped, etag=etag, modified=head.modified)
            self.renders.put(key, rendered)
        return rendered

    def _load(self, name: str) -> tuple[int | None, pm.Document]:
        found = self.metadata.document(name)
        if found is None:
            return None, pm.new_document(name)
        rev, raw = found
        return rev, pm.load_document(raw)

    def manifest(self, identity: Identity, name: str, spec: str, base_url: str) -> bytes:
        """One version by number or dist-tag."""
        self._head(identity, name, Action.READ)
        _rev, doc = self._load(name)
        found = pm.manifest_for(doc, spec)
        if found is None:
            raise NotFound(f"version not found: {name}@{spec}")
        return pm.materialize(pm.dump(found), base_url)

    def write_document(self, identity: Identity, name: str, base_url: str) -> bytes:
        """The full document with ``_rev`` for ``?write=true`` (uncached)."""
        self._head(identity, name, Action.READ)
        rev, doc = self._load(name)
        return pm.materialize(pm.dump(pm.write_document(doc, rev or 0)), base_url)

    def dist_tags(self, identity: Identity, name: str) -> dict[str, str]:
        self._head(identity, name, Action.READ)
        _rev, doc = self._load(name)
        tags: dict[str, str] = doc["dist-tags"]
        return tags

    def tarball(self, identity: Identity, name: str, filename: str) -> TarballEntry:
        """The storage entry of a tarball by its file name; 410 for an unpublished version."""
        head = self.metadata.head(name)
        self.auth.authorize(identity, Action.READ, name, Repository.from_json(head.repository) if head else None)
        version = version_from_filename(name, filename)
        entry = self.metadata.tarball(name, version) if head and version else None
        if entry is None:
            raise NotFound(f"tarball not found: {name}/-/{filename}")
        if entry.gone:
            raise Gone(f"{name}@{version} was unpublished; its tarball is gone for good")
        return entry

    def search(self, identity: Identity, text: str, size: int, offset: int) -> tuple[int, list[dict[str, t.Any]]]:
        """Packages matching every term of ``text`` that ``identity`` may read, best first."""
        terms = [w.lower() for w in text.split() if ":" not in w]
        scopes = [w.split(":", 1)[1].lower().lstrip("@") for w in text.split() if w.startswith("scope:")]
        hits: list[tuple[float, dict[str, t.Any]]] = []
        for name, raw in self.metadata.summaries():
            summary = json.loads(raw)
            if scopes and (scope_of(name) or "").lstrip("@") not in scopes:
                continue
            haystack = " ".join([name, summary.get("description", ""), *summary.get("keywords", [])]).lower()
            if not all(term in haystack for term in terms):
                continue
            score = 1.0 if terms and any(term == name or name.endswith("/" + term) for term in terms) else 0.5
            hits.append((score, summary))
        readable = self.auth.readable(
            identity, [(s["name"], Repository.from_json(s.get("repository"))) for _score, s in hits]
        )
        visible = [(score, s) for score, s in hits if s["name"] in readable]
        visible.sort(key=lambda pair: (-pair[0], pair[1]["name"]))
        return len(visible), [s for _score, s in visible[offset : offset + size]]

    # -- writes ----------------------------------------------------------------------------

    def _commit(self, doc: pm.Document, rev: int | None) -> bool:
        return self.metadata.compare_and_swap(pm.build_record(doc, (rev or 0) + 1), rev)

    def _authorize_publish(
        self, identity: Identity, name: str, doc: pm.Document, claimed: Repository | None
    ) -> Repository | None:
        """Check the caller may publish this version; return the binding to store."""
        bound = Repository.from_json(doc["nmr"]["repository"])
        if bound is None:
            self.auth.authorize(identity, Action.WRITE, name, claimed)
            return claimed
        if claimed is None or claimed.same_as(bound):
            self.auth.authorize(identity, Action.WRITE, name, bound)
            return bound
        # The version names another repository: that moves the package, an admin's decision.
        self.auth.authorize(identity, Action.REBIND, name, bound)
        self.auth.authorize(identity, Action.WRITE, name, claimed)
        log.info("package %s moves from repository %s to %s", name, bound.full_name, claimed.full_name)
        return claimed

    def put_package(self, identity: Identity, name: str, body: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
        """``PUT /<name>``: a publish, or a metadata update (deprecate) or a star."""
        if is_publish(body):
            return self.publish(identity, name, body)
        self.require_hosted_write(name)
        if isinstance(body.get("versions"), dict):
            self._update(
                identity,
                name,
                Action.WRITE,
                lambda doc, now: pm.apply_deprecations(doc, body["versions"], now) > 0,
            )
            return 200, {"ok": True}
        if isinstance(body.get("users"), dict):
            login = identity.login or ""
            self._update(
                identity,
                name,
                Action.READ,
                lambda doc, now: pm.set_users(doc, body["users"], login, now),
            )
            return 200, {"ok": True}
        raise BadRequest(
            "unrecognised update: a PUT on a package publishes (with _attachments), "
            "deprecates (versions) or stars (users)"
        )

    def publish(self, identity: Identity, name: str, body: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
        self.require_hosted_write(name)
        # Refuse callers who cannot publish before decoding and unpacking a tarball that may be
        # 100 MB. Every publish over an existing binding needs at least push on it (moving the
        # package needs admin there), so this check is never stricter than the full one below.
        head = self.metadata.head(name)
        bound = Repository.from_json(head.repository) if head else None
        if identity.anonymous or bound is not None:
            self.auth.authorize(identity, Action.WRITE, name, bound)
        request = validate_publish(name, body)
        claimed = self.auth.bind(identity, name, request.manifest)
        stored_key: str | None = None
        for _attempt in range(CAS_ATTEMPTS):
            rev, doc = self._load(name)
            binding = self._authorize_publish(identity, name, doc, claimed)
            version = request.version
            if version in doc["nmr"]["tombstones"]:
                raise Conflict(
                    f"{name}@{version} was unpublished on {doc['nmr']['tombstones'][version]}; a version "
                    "number can never be reused: bump the version and publish again"
                )
            previous = doc["versions"].get(version)
            previous_key = doc["nmr"]["tarballs"].get(version, {}).get("key")
            if previous is not None:
                if previous.get("dist", {}).get("integrity") == request.digests.integrity:
                    return 201, {
                        "ok": True,
                        "success": True,
                        "id": name,
                        "rev": pm.rev_string(name, rev or 0, doc["time"].get("modified", "")),
                    }
                if not self.allow_previous_version:
                    raise Conflict(
                        f"You cannot publish over the previously published versions: {version}. "
                        "Bump the version in package.json and publish again."
                    )
            if stored_key is None:
                stored_key = self._store_tarball(name, request)
            self._apply_publish(doc, identity, request, stored_key)
            doc["nmr"]["repository"] = binding.to_json() if binding else None
            if self._commit(doc, rev):
                if previous_key and previous_key != stored_key:
                    self._delete_blobs([previous_key])
                log.info("published %s@%s", name, version)
                return 201, {
                    "ok": True,
                    "success": True,
                    "id": name,
                    "rev": pm.rev_string(name, (rev or 0) + 1, doc["time"]["modified"]),
                }
        raise Unavailable(f"{name} is being changed by many writers at once; publish again", retry_after=1)

    def _store_tarball(self, name: str, request: PublishRequest) -> str:
        key = tarball_key(name, request.version, request.digests.shasum)
        self.storage.put(key, io.BytesIO(request.data), len(request.data))
        return key

    def _apply_publish(self, doc: pm.Document, identity: Identity, request: PublishRequest, key: str) -> None:
        from nmr.metadata import TarballEntry

        dist = {
            "shasum": request.digests.shasum,
            "integrity": request.digests.integrity,
            "tarball": pm.tarball_url_template(request.name, request.version),
            "fileCount": request.info.file_count,
            "unpackedSize": request.info.unpacked_size,
        }
        publisher = {"name": identity.login or "anonymous", "email": identity.email}
        pm.apply_publish(
            doc,
            manifest=request.manifest,
            tags=request.tags,
            dist=dist,
            tarball=TarballEntry(key=key, size=len(request.data), integrity=request.digests.integrity),
            publisher=publisher,
            has_shrinkwrap=request.info.has_shrinkwrap,
            readme=request.readme,
            now=pm.now_iso(),
        )

    def _update(
        self,
        identity: Identity,
        name: str,
        action: Action,
        change: t.Callable[[pm.Document, str], bool],
        *,
        expected_rev: int | None = None,
    ) -> pm.Document:
        """Authorise, then apply ``change`` in a compare-and-swap loop; 404 if no package."""
        for _attempt in range(CAS_ATTEMPTS):
            rev, doc = self._load(name)
            self.auth.authorize(identity, action, name, Repository.from_json(doc["nmr"]["repository"]))
            if rev is None or not pm.exists(doc):
                raise NotFound(f"{name} is not in this registry")
            if expected_rev is not None and expected_rev != rev:
                raise Conflict(
                    f"{name} changed since you read it (revision {expected_rev}, now {rev}); run the command again"
                )
            if not change(doc, pm.now_iso()):
                return doc
            if self._commit(doc, rev):
                return doc
        raise Unavailable(f"{name} is being changed by many writers at once; try again", retry_after=1)

    def set_dist_tag(self, identity: Identity, name: str, tag: str, version: object) -> None:
        validate_tag(tag)
        version = validate_version(version)
        self.require_hosted_write(name)

        def change(doc: pm.Document, now: str) -> bool:
            if version not in doc["versions"]:
                raise NotFound(f"{name}@{version} does not exist: publish it before tagging it")
            return pm.set_dist_tag(doc, tag, version, now)

        self._update(identity, name, Action.WRITE, change)

    def remove_dist_tag(self, identity: Identity, name: str, tag: str) -> None:
        self.require_hosted_write(name)
        if tag == "latest":
            raise Forbidden("the 'latest' dist-tag cannot be removed; point it at another version instead")

        def change(doc: pm.Document, now: str) -> bool:
            if tag not in doc["dist-tags"]:
                raise NotFound(f"{name} has no dist-tag {tag!r}")
            return pm.remove_dist_tag(doc, tag, now)

        self._update(identity, name, Action.WRITE, change)

    def put_revision(self, identity: Identity, name: str, rev: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """``PUT /<name>/-rev/<rev>``: unpublish versions (body lacks them) or an owner change."""
        self.require_hosted_write(name)
        expected = pm.parse_rev(rev)
        if expected is None:
            raise BadRequest(f"invalid revision {rev[:64]!r}")
        if isinstance(body.get("versions"), dict):
            kept = set(body["versions"])
            removed: list[TarballEntry] = []

            def change(doc: pm.Document, now: str) -> bool:
                gone = set(doc["versions"]) - kept
                removed[:] = pm.apply_unpublish(doc, gone, now) if gone else []
                return bool(gone)

            self._update(identity, name, Action.UNPUBLISH, change, expected_rev=expected)
            self._delete_blobs([e.key for e in removed])
            return {"ok": True, "success": True}
        if "maintainers" in body:
            self._head(identity, name, Action.READ)
            raise Forbidden(
                "package owners are not managed by nmr: who may publish follows the permissions of the "
                "package's GitHub repository; grant access there"
            )
        raise BadRequest("unrecognised update: expected 'versions' (unpublish) or 'maintainers'")

    def unpublish_package(self, identity: Identity, name: str, rev: str | None) -> None:
        """``DELETE /<name>/-rev/<rev>``: remove every version, keeping tombstones."""
        self.require_hosted_write(name)
        expected = pm.parse_rev(rev) if rev is not None else None
        if rev is not None and expected is None:
            raise BadRequest(f"invalid revision {rev[:64]!r}")
        removed: list[TarballEntry] = []

        def change(doc: pm.Document, now: str) -> bool:
            removed[:] = pm.apply_unpublish(doc, set(doc["versions"]), now)
            return True

        self._update(identity, name, Action.UNPUBLISH, change, expected_rev=expected)
        self._delete_blobs([e.key for e in removed])
        log.info("unpublished %s", name)

    def delete_tarball(self, identity: Identity, name: str, filename: str) -> None:
        """``DELETE /<name>/-/<file>/-rev/<rev>``: idempotent; unpublishes the version if listed."""
        self.require_hosted_write(name)
        version = version_from_filename(name, filename)
        if version is None:
            raise NotFound(f"tarball not found: {name}/-/{filename}")
        removed: list[TarballEntry] = []

        def change(doc: pm.Document, now: str) -> bool:
            if version not in doc["versions"]:
                return False
            removed[:] = pm.apply_unpublish(doc, {version}, now)
            return True

        try:
            self._update(identity, name, Action.UNPUBLISH, change)
        except NotFound:
            return  # already gone: npm deletes the tarball after the version; both are fine
        self._delete_blobs([e.key for e in removed])

    def _delete_blobs(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.storage.delete(key)
            except Exception:  # the metadata no longer points at it: an orphan, not an error
                log.warning("could not delete tarball %s from storage; it is now an orphan", key)
