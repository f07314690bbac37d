"""``auth.type = "github"``: GitHub decides who may read and write each package.

Identity comes from ``GET /user`` with the caller's token; permission on a package comes from
the ``permissions`` block of the repository it is bound to, as GitHub shows it to that token:

=========================  ==================================================
action                     needs
=========================  ==================================================
READ                       pull
WRITE                      push
UNPUBLISH                  admin (push when ``auth.github.unpublish = "push"``)
REBIND                     admin
=========================  ==================================================

No pull, or a repository GitHub hides from the token (404), is ``NotFound`` so private names do
not leak; pull without the needed level is ``Forbidden``. GitHub failing (timeouts, refused
connections, 5xx, rate limits) is ``Unavailable`` (503 + Retry-After), never ``Unauthorized``:
a 401 makes npm forget the user's credentials.

Caching. Every answer is cached in-process, keyed by the SHA-256 of the token (``token_id``),
never the token: positive answers for ``cache_ttl`` seconds, negative ones (rejected token, no
access) for ``negative_ttl``. Expired positive answers are kept ``stale_grace`` seconds longer
and used only while GitHub is failing. The first permission question for a token loads the
paginated ``GET /user/repos`` (it carries ``permissions``), so a cold install of N packages
from M repositories costs about M/100 + 1 calls, not N; a repository missing from that list
(e.g. a public one the user has no affiliation with) costs one ``GET /repos/{owner}/{repo}``.
Expired entries are revalidated with ``If-None-Match`` (a 304 costs no rate limit). Only one
thread refreshes a given entry at a time; the others wait for its answer.

PyGithub: one shared ``Github`` client (so one connection pool) built with ``retry=None`` and
no throttling (PyGithub 2.x sleeps 0.25 s between requests and retries by default, wrong on a
request path). Calls go through ``Github.requester.requestJson``, which returns the status and
headers we need for 304s, ``Link`` pagination and rate limits; the caller's token is sent per
call in the ``Authorization`` header, and ``_MaskedCallerToken`` keeps it out of PyGithub's
debug log.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import re
import threading
import time
import typing as t
import weakref

import cachetools
from github import Auth, Github

from nmr.auth import ANONYMOUS, Action, Authenticator, Identity, Repository
from nmr.auth.repository import RepositoryError, check_repository, valid_name, valid_owner, web_host
from nmr.errors import BadRequest, Forbidden, NotFound, Unauthorized, Unavailable

if t.TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from nmr.config import Config

log = logging.getLogger(__name__)

#: The most ``/user/repos`` pages read per refresh (100 repositories each). Repositories past
#: the cap still work, at one ``GET /repos/{owner}/{repo}`` each.
MAX_REPO_PAGES = 10
#: After a timeout or a refused connection, GitHub is not asked again for this many seconds
#: (every waiting request would otherwise sit out its own timeout); also the Retry-After then.
OUTAGE_HOLD_OFF = 10
#: Retry-After for a failure GitHub gave no better hint for (5xx, unreadable answer).
DEFAULT_RETRY_AFTER = 5
#: Log a GitHub failure of one kind at most once per this many seconds.
LOG_INTERVAL = 60
_MAX_TOKENS = 10_000
_MAX_REPO_ENTRIES = 100_000

_LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class Level(enum.IntEnum):
    """A caller's access to a repository, in GitHub's words (pull = read, push = write)."""

    NONE = 0
    PULL = 1
    PUSH = 2
    ADMIN = 3

    @classmethod
    def from_permissions(cls, permissions: t.Any) -> Level:
        """The level a repository's ``permissions`` block grants."""
        if not isinstance(permissions, dict):
            return cls.NONE
        if permissions.get("admin"):
            return cls.ADMIN
        if permissions.get("push") or permissions.get("maintain"):
            return cls.PUSH
        if permissions.get("pull") or permissions.get("triage"):
            return cls.PULL
        return cls.NONE


_WORDS = {Level.PULL: "pull (read)", Level.PUSH: "push (write)", Level.ADMIN: "admin"}
_DOING = {
    Action.READ: "reading",
    Action.WRITE: "publishing, changing dist-tags or deprecating",
    Action.UNPUBLISH: "unpublishing",
    Action.REBIND: "moving it to another repository",
}


class _MaskedCallerToken(Auth.Auth):
    """Auth for the shared client: the token travels per call; PyGithub's debug log masks it."""

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return ""

    def authentication(self, headers: dict[str, str]) -> None:
        pass  # set by GitHubAuth._get for each call

    def mask_authentication(self, headers: dict[str, str]) -> None:
        if "Authorization" in headers:
            headers["Authorization"] = "(token masked)"


class _GitHubDown(Exception):
    """Internal: GitHub cannot answer now. ``message`` is for the user; never holds a token."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, retry_after)


@dataclasses.dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> t.Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            raise _GitHubDown("GitHub sent an answer nmr cannot read", DEFAULT_RETRY_AFTER) from None


@dataclasses.dataclass
class _Entry:
    """One cached decision: fresh until ``expires``, usable in an outage until ``stale_until``."""

    value: t.Any
    positive: bool
    expires: float
    stale_until: float
    etag: str = ""  # for If-None-Match on a single resource
    pages: list[_Page] = dataclasses.field(default_factory=list)  # for a paginated one


@dataclasses.dataclass(frozen=True)
class _User:
    login: str | None  # None: GitHub rejected the token
    refusal: str = ""  # why GitHub or the orgs gate will not let this token in (a 403)


@dataclasses.dataclass(frozen=True)
class _Page:
    url: str
    etag: str
    items: list[t.Any]  # compacted (see _get_pages): a page of raw repository JSON is ~0.5 MB
    next_url: str | None


@dataclasses.dataclass(frozen=True)
class _Perm:
    level: Level
    refusal: str = ""  # GitHub's reason when it refuses (403) rather than hides (404)


class GitHubAuth(Authenticator):
    """The GitHub backend. Thread-safe; one instance serves the whole process."""

    def __init__(
        self,
        api_url: str = "https://api.github.com",
        *,
        host: str = "",
        cache_ttl: float = 300,
        negative_ttl: float = 30,
        stale_grace: float = 3600,
        orgs: t.Sequence[str] = (),
        unpublish: str = "admin",
        timeout: int = 10,
        scope_owners: t.Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_repo_pages: int = MAX_REPO_PAGES,
    ) -> None:
        """``host`` is the GitHub web host repository URLs must name (default: from ``api_url``).

        ``clock`` (monotonic seconds) drives every expiry; tests pass a fake one.
        """
        if unpublish not in ("admin", "push"):
            raise ValueError(f"unpublish must be 'admin' or 'push', not {unpublish!r}")
        self.api_url = api_url.rstrip("/")
        self.host = (host or web_host(self.api_url)).lower()
        self.cache_ttl = cache_ttl
        self.negative_ttl = negative_ttl
        self.stale_grace = stale_grace
        self.orgs = tuple(orgs)
        self.timeout = timeout
        self.scope_owners = {k.lower(): v for k, v in (scope_owners or {}).items()}
        self.max_repo_pages = max_repo_pages
        self._needed = {
            Action.READ: Level.PULL,
            Action.WRITE: Level.PUSH,
            Action.UNPUBLISH: Level.ADMIN if unpublish == "admin" else Level.PUSH,
            Action.REBIND: Level.ADMIN,
        }
        self._clock = clock
        # No retries and no throttling: a request waits for at most one GitHub call of
        # `timeout` seconds per question, and failures become a 503 at once.
        self._github = Github(
            auth=_MaskedCallerToken(),
            base_url=self.api_url,
            timeout=timeout,  # PyGithub insists on whole seconds
            user_agent="nmr",
            per_page=100,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        keep = max(cache_ttl, negative_ttl) + stale_grace
        # cachetools caches are not thread-safe: every access holds self._lock (never across
        # a GitHub call). Entries carry their own expiry; the cache TTL only bounds memory.
        self._lock = threading.Lock()
        self._users: cachetools.TTLCache[str, _Entry] = cachetools.TTLCache(_MAX_TOKENS, keep, timer=clock)
        self._lists: cachetools.TTLCache[str, _Entry] = cachetools.TTLCache(_MAX_TOKENS, keep, timer=clock)
        self._repos: cachetools.TTLCache[tuple[str, str], _Entry] = cachetools.TTLCache(
            _MAX_REPO_ENTRIES, keep, timer=clock
        )
        # Rate limits are per token: token_id -> the clock() time the limit lifts.
        self._limited: cachetools.TTLCache[str, float] = cachetools.TTLCache(_MAX_TOKENS, 3600, timer=clock)
        self._down_until = 0.0
        self._flights: weakref.WeakValueDictionary[Hashable, threading.Lock] = weakref.WeakValueDictionary()
        self._last_logged: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: Config) -> GitHubAuth:
        return cls(
            config.get("auth.github.api_url"),
            host=config.get("auth.github.host", ""),
            cache_ttl=config.get("auth.github.cache_ttl"),
            negative_ttl=config.get("auth.github.negative_ttl"),
            stale_grace=config.get("auth.github.stale_grace"),
            orgs=config.get("auth.github.orgs") or (),
            unpublish=config.get("auth.github.unpublish"),
            timeout=config.get("auth.github.timeout"),
            scope_owners=config.get("registry.scope_owners") or {},
        )

    def __repr__(self) -> str:
        return f"GitHubAuth(api_url={self.api_url!r}, host={self.host!r})"

    def close(self) -> None:
        self._github.close()

    # -- Authenticator ---------------------------------------------------------------------

    def identify(self, token: str | None) -> Identity:
        if not token:
            return ANONYMOUS
        identity = Identity(login=None, token=token)
        user: _User = self._cached(self._users, identity.token_id, "user", identity, self._fetch_user)
        if user.refusal:
            raise Forbidden(user.refusal)
        if user.login is None:
            raise Unauthorized(
                "GitHub rejected this token (expired, revoked or mistyped): put a valid GitHub "
                "personal access token in .npmrc as //<registry>/:_authToken=<token>"
            )
        return Identity(login=user.login, token=token)

    def authorize(self, identity: Identity, action: Action, package: str, repository: Repository | None) -> None:
        if identity.anonymous:
            raise Unauthorized()
        if repository is None:
            # A hosted package is always bound; no binding means no such package.
            raise NotFound()
        perm = self._permission(identity, repository)
        if perm.level == Level.NONE:
            if perm.refusal:
                raise Forbidden(perm.refusal)
            raise NotFound()
        needed = self._needed[action]
        if perm.level < needed:
            raise Forbidden(
                f"{package}: {_DOING[action]} needs {_WORDS[needed]} access to the GitHub "
                f"repository {repository.full_name}; your token has {_WORDS[perm.level]} access"
            )

    def bind(self, identity: Identity, package: str, manifest: dict[str, t.Any]) -> Repository:
        scope, slash, bare = package.partition("/")
        if not scope.startswith("@") or not slash:
            raise Forbidden(f"{package}: only scoped packages (@owner/name) can be published here")
        owner = self.scope_owners.get(scope.lower(), scope[1:])
        example = self._repository_example(owner, bare)
        field = manifest.get("repository")
        if field is None or field == "" or field == {}:
            raise BadRequest(
                f'{package}: package.json has no "repository" field; add "repository": '
                f"{example} naming the GitHub repository the package is published from"
            )
        try:
            repo = check_repository(field, self.host)
        except RepositoryError as exc:
            if exc.host:
                raise BadRequest(
                    f'{package}: the "repository" field names a repository on {exc.host}, but '
                    f"this registry checks permissions on {self.host}; use "
                    f'"repository": {example}'
                ) from None
            raise BadRequest(
                f'{package}: the "repository" field cannot be used ({exc.reason}); write it as "repository": {example}'
            ) from None
        if repo.owner.lower() != owner.lower():
            mapped = scope.lower() in self.scope_owners
            why = (
                f"registry.scope_owners maps {scope} to {owner}"
                if mapped
                else f"the scope {scope} must match the repository owner"
            )
            raise Forbidden(
                f"{package}: its repository {repo.full_name} is owned by {repo.owner}, but "
                f"{why}; publish from a repository under {self.host}/{owner}"
            )
        return repo

    def readable(self, identity: Identity, packages: list[tuple[str, Repository | None]]) -> set[str]:
        """Names whose repository the caller can pull, from the cached repository list.

        Costs at most the list refresh, never a call per package. A repository outside the
        caller's list (one they have no affiliation with) counts only once a direct check of
        it is cached, e.g. after the caller installed from it.
        """
        if identity.anonymous or not any(repo for _name, repo in packages):
            return set()
        levels: dict[str, Level] = self._cached(self._lists, identity.token_id, "repos", identity, self._fetch_list)
        now = self._clock()
        out = set()
        for name, repo in packages:
            if repo is None:
                continue
            key = repo.full_name.lower()
            with self._lock:
                single = self._repos.get((identity.token_id, key))
            fresh = single is not None and now < single.expires
            level = single.value.level if fresh and single else levels.get(key, Level.NONE)
            if level >= Level.PULL:
                out.add(name)
        return out

    def login(self, username: str, password: str) -> str:
        if not password:
            raise Unauthorized("npm login: give your GitHub login and a personal access token")
        identity = self.identify(password)
        if not username or (identity.login or "").lower() != username.lower():
            raise Unauthorized(f"npm login: this personal access token does not belong to GitHub user {username!r}")
        return password

    # -- permissions -----------------------------------------------------------------------

    def _permission(self, identity: Identity, repo: Repository) -> _Perm:
        if not (valid_owner(repo.owner) and valid_name(repo.name)):
            return _Perm(Level.NONE)  # never put such a name in a GitHub URL (e.g. "..")
        tid = identity.token_id
        key = (tid, repo.full_name.lower())
        with self._lock:
            single = self._repos.get(key)
        if single is not None and self._clock() < single.expires:
            return t.cast(_Perm, single.value)
        try:
            levels: dict[str, Level] = self._cached(self._lists, tid, "repos", identity, self._fetch_list)
        except Unavailable:
            levels = {}  # a stale single answer may still do; _cached below decides
        if key[1] in levels:
            return _Perm(levels[key[1]])
        return t.cast(
            _Perm,
            self._cached(self._repos, key, "repo", identity, lambda i, e: self._fetch_repo(i, e, repo)),
        )

    # -- the cache discipline --------------------------------------------------------------

    def _cached(
        self,
        cache: cachetools.TTLCache[t.Any, _Entry],
        key: t.Any,
        kind: str,
        identity: Identity,
        fetch: Callable[[Identity, _Entry | None], _Entry],
    ) -> t.Any:
        """The value under ``key``: fresh from the cache, else fetched once for all waiters.

        While GitHub fails, a positive entry within its stale grace is used; without one the
        failure is ``Unavailable``.
        """
        entry = self._peek(cache, key)
        if entry is not None:
            return entry.value
        with self._lock:
            flight = self._flights.get((kind, key))
            if flight is None:
                flight = self._flights[(kind, key)] = threading.Lock()
        # Waiting longer than one GitHub call means the refresher is stuck: treat as an outage.
        if not flight.acquire(timeout=self.timeout + 1):
            return self._stale_or_fail(cache, key, _GitHubDown("GitHub is answering too slowly", OUTAGE_HOLD_OFF))
        try:
            entry = self._peek(cache, key)
            if entry is not None:
                return entry.value
            with self._lock:
                old = cache.get(key)
            try:
                new = fetch(identity, old)
            except _GitHubDown as down:
                return self._stale_or_fail(cache, key, down)
            with self._lock:
                cache[key] = new
            return new.value
        finally:
            flight.release()

    def _peek(self, cache: cachetools.TTLCache[t.Any, _Entry], key: t.Any) -> _Entry | None:
        """The entry under ``key`` if it is fresh."""
        with self._lock:
            entry = cache.get(key)
        return entry if entry is not None and self._clock() < entry.expires else None

    def _stale_or_fail(self, cache: cachetools.TTLCache[t.Any, _Entry], key: t.Any, down: _GitHubDown) -> t.Any:
        with self._lock:
            entry = cache.get(key)
        # Only yes-answers are served stale: an old "no" may be what the user just fixed,
        # and a 503 tells them to retry where a 404 would tell them to give up.
        if entry is not None and entry.positive and self._clock() < entry.stale_until:
            self._log_once("stale", "GitHub is failing; answering from cached decisions")
            return entry.value
        raise Unavailable(down.message, retry_after=down.retry_after)

    def _entry(self, value: t.Any, *, positive: bool, etag: str = "") -> _Entry:
        now = self._clock()
        expires = now + (self.cache_ttl if positive else self.negative_ttl)
        return _Entry(value, positive, expires, expires + self.stale_grace, etag)

    def _revalidated(self, old: _Entry) -> _Entry:
        """``old``, confirmed by a 304: fresh for another TTL."""
        new = self._entry(old.value, positive=old.positive, etag=old.etag)
        new.pages = old.pages
        return new

    # -- fetchers: one GitHub resource each, returning a cache entry -----------------------

    def _fetch_user(self, identity: Identity, old: _Entry | None) -> _Entry:
        etag = old.etag if old is not None and old.positive else ""
        answer = self._get("/user", identity, etag)
        if answer.status == 304 and old is not None and etag and not self.orgs:
            return self._revalidated(old)
        if answer.status == 304 and old is not None and etag:
            login = t.cast(_User, old.value).login
        elif answer.status == 200:
            data = answer.json()
            login = data.get("login") if isinstance(data, dict) else None
            if not isinstance(login, str) or not login:
                raise _GitHubDown("GitHub sent an answer nmr cannot read", DEFAULT_RETRY_AFTER)
        elif answer.status == 401:
            return self._entry(_User(None), positive=False)
        elif answer.status == 403:
            # Not a rate limit (_get handles those): a token that may not read its own user,
            # e.g. a GitHub App installation token. Retrying will not help, so no 503.
            refusal = f"GitHub refused to say whose token this is ({_message(answer)}); use a personal access token"
            return self._entry(_User(None, refusal), positive=False)
        else:
            raise self._unexpected(answer, "/user")
        etag = answer.headers.get("etag", "") or etag
        assert login is not None
        if not self.orgs:
            return self._entry(_User(login), positive=True, etag=etag)
        pages = self._get_pages("/user/orgs?per_page=100", identity, old.pages if old else [], _org_login)
        orgs = {login for page in pages for login in page.items}
        if orgs & {o.lower() for o in self.orgs}:
            entry = self._entry(_User(login), positive=True, etag=etag)
        else:
            refusal = (
                f"GitHub user {login} is not a member of any organisation allowed to use this "
                f"registry ({', '.join(self.orgs)}); if you are, give your token the read:org scope"
            )
            entry = self._entry(_User(login, refusal), positive=False, etag=etag)
        entry.pages = pages
        return entry

    def _fetch_list(self, identity: Identity, old: _Entry | None) -> _Entry:
        """All repositories the token is affiliated with, and its level on each."""
        pages = self._get_pages("/user/repos?per_page=100", identity, old.pages if old else [], _repo_level)
        levels: dict[str, Level] = dict(pair for page in pages for pair in page.items)
        entry = self._entry(levels, positive=True)
        entry.pages = pages
        return entry

    def _fetch_repo(self, identity: Identity, old: _Entry | None, repo: Repository) -> _Entry:
        etag = old.etag if old is not None and old.positive else ""
        answer = self._get(f"/repos/{repo.owner}/{repo.name}", identity, etag)
        if answer.status == 304 and old is not None and etag:
            return self._revalidated(old)
        if answer.status == 200:
            data = answer.json()
            if not isinstance(data, dict):
                raise _GitHubDown("GitHub sent an answer nmr cannot read", DEFAULT_RETRY_AFTER)
            perms = data.get("permissions")
            # Without a permissions block GitHub still showed the repository: it is readable.
            level = Level.from_permissions(perms) if isinstance(perms, dict) else Level.PULL
            return self._entry(_Perm(level), positive=level > Level.NONE, etag=answer.headers.get("etag", ""))
        if answer.status == 404:
            return self._entry(_Perm(Level.NONE), positive=False)
        if answer.status == 401:
            raise Unauthorized("GitHub rejected this token (expired or revoked)")
        if answer.status == 403:
            # e.g. an organisation enforcing SAML SSO the token is not authorised for. GitHub
            # answers so for any repository of that organisation, so saying so leaks nothing.
            message = _message(answer)
            return self._entry(
                _Perm(Level.NONE, f"GitHub refused access to {repo.owner}: {message}"),
                positive=False,
            )
        raise self._unexpected(answer, "/repos/{owner}/{repo}")

    # -- HTTP ------------------------------------------------------------------------------

    def _get_pages(
        self,
        path: str,
        identity: Identity,
        old_pages: list[_Page],
        compact: Callable[[t.Any], t.Any],
    ) -> list[_Page]:
        """Follow ``Link: rel="next"``, revalidating each page known from ``old_pages``.

        Each page keeps only ``compact(item)`` of its items (None drops one), for memory.
        """
        known = {p.url: p for p in old_pages}
        pages: list[_Page] = []
        url: str | None = path
        while url is not None and len(pages) < self.max_repo_pages:
            old = known.get(url)
            answer = self._get(url, identity, old.etag if old else "")
            if answer.status == 304 and old is not None:
                pages.append(old)
                url = old.next_url
                continue
            if answer.status == 401:
                raise Unauthorized("GitHub rejected this token (expired or revoked)")
            if answer.status != 200:
                raise self._unexpected(answer, path.split("?")[0])
            items = answer.json()
            if not isinstance(items, list):
                raise _GitHubDown("GitHub sent an answer nmr cannot read", DEFAULT_RETRY_AFTER)
            next_url = self._next_link(answer.headers.get("link", ""))
            kept = [c for c in map(compact, items) if c is not None]
            pages.append(_Page(url, answer.headers.get("etag", ""), kept, next_url))
            url = next_url
        if url is not None:
            log.info(
                "stopped reading %s after %d pages; the rest is checked one by one",
                path,
                len(pages),
            )
        return pages

    def _next_link(self, link: str) -> str | None:
        m = _LINK_NEXT_RE.search(link)
        if not m:
            return None
        url = m.group(1)
        # Only follow links to our own API (never send the token anywhere else).
        return url if url.startswith(self.api_url + "/") else None

    def _get(self, url: str, identity: Identity, etag: str = "") -> _Answer:
        """One GET with the caller's token. Raises ``_GitHubDown`` for outages and rate limits."""
        tid = identity.token_id
        now = self._clock()
        with self._lock:
            limited = self._limited.get(tid)
            down_until = self._down_until
        if limited is not None and now < limited:
            raise _GitHubDown(_RATE_LIMITED, int(limited - now) + 1)
        if now < down_until:
            raise _GitHubDown(_NOT_ANSWERING, int(down_until - now) + 1)
        headers = {
            "Authorization": f"token {identity.token}",
            "Accept": "application/vnd.github+json",
        }
        if etag:
            headers["If-None-Match"] = etag
        try:
            status, raw_headers, body = self._github.requester.requestJson("GET", url, headers=headers)
        except Exception as exc:  # anything the client raises means "GitHub failed"
            # requests' Timeout/ConnectionError mostly; the message holds the URL, never the
            # token (that travels in a header).
            with self._lock:
                self._down_until = self._clock() + OUTAGE_HOLD_OFF
            self._log_once("outage", "GitHub request failed: %s", type(exc).__name__)
            raise _GitHubDown(_NOT_ANSWERING, OUTAGE_HOLD_OFF) from None
        answer = _Answer(status, {k.lower(): str(v) for k, v in raw_headers.items()}, body or "")
        retry_after = _rate_limit_wait(answer)
        if retry_after is not None:
            with self._lock:
                self._limited[tid] = self._clock() + retry_after
            self._log_once("ratelimit", "GitHub rate limit reached for a token; retry in %ds", retry_after)
            raise _GitHubDown(_RATE_LIMITED, retry_after)
        if status >= 500:
            self._log_once("outage", "GitHub answered %d", status)
            raise _GitHubDown(_NOT_ANSWERING, DEFAULT_RETRY_AFTER)
        return answer

    def _unexpected(self, answer: _Answer, what: str) -> _GitHubDown:
        self._log_once("unexpected", "GitHub answered %d to GET %s", answer.status, what)
        return _GitHubDown(f"GitHub answered {answer.status} where nmr did not expect it", DEFAULT_RETRY_AFTER)

    def _log_once(self, kind: str, msg: str, *args: t.Any) -> None:
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(kind)
            if last is not None and now - last < LOG_INTERVAL:
                return
            self._last_logged[kind] = now
        log.warning(msg, *args)

    def _repository_example(self, owner: str, bare: str) -> str:
        if self.host == "github.com":
            return f'"github:{owner}/{bare}"'
        return f'"https://{self.host}/{owner}/{bare}"'


_NOT_ANSWERING = "GitHub is not answering, so nmr cannot check your token; try again shortly"
_RATE_LIMITED = "GitHub's API rate limit for your token is used up; try again after the Retry-After time"


def _org_login(item: t.Any) -> str | None:
    login = item.get("login") if isinstance(item, dict) else None
    return login.lower() if isinstance(login, str) else None


def _repo_level(item: t.Any) -> tuple[str, Level] | None:
    """(lower-case full name, level) of a ``/user/repos`` item; None without permissions."""
    if not isinstance(item, dict) or not isinstance(item.get("full_name"), str):
        return None
    if not isinstance(item.get("permissions"), dict):
        return None  # asked for directly when needed
    return item["full_name"].lower(), Level.from_permissions(item["permissions"])


def _message(answer: _Answer) -> str:
    try:
        data = json.loads(answer.body)
    except ValueError:
        data = None
    text = data.get("message") if isinstance(data, dict) else None
    return str(text)[:300] if text else f"HTTP {answer.status}"


def _rate_limit_wait(answer: _Answer) -> int | None:
    """Seconds until a rate-limited token may ask again, or None if this is no rate limit.

    Primary limits: 403/429 with ``X-RateLimit-Remaining: 0``, lifting at ``X-RateLimit-Reset``
    (epoch seconds). Secondary limits: 403/429 with ``Retry-After``, or a "rate limit" message.
    """
    if answer.status not in (403, 429):
        return None
    h = answer.headers
    if h.get("retry-after", "").strip().isdigit():
        return max(1, int(h["retry-after"].strip()))
    if h.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(h.get("x-ratelimit-reset", ""))
        except ValueError:
            return 60
        return max(1, min(3600, int(reset - time.time()) + 1))
    if answer.status == 429 or "rate limit" in _message(answer).lower():
        return 60
    return None


__all__ = ["GitHubAuth", "Level"]
