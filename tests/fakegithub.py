"""A small GitHub API double for end-to-end tests, served over real HTTP on 127.0.0.1.

Usage::

    with FakeGitHub() as gh:                       # or FakeGitHub(prefix="/api/v3") for GHE
        alice = gh.add_user("alice", token="ghp_alice", orgs=["acme"])
        gh.add_repo("acme/widgets", private=True, perms={"alice": "push"})
        config overrides: {"auth": {"github": {"api_url": gh.url}}}
        ...
        gh.calls("/user/repos")                    # requests seen on that path (any query)
        gh.fail("error")                           # 500s; also "drop", "ratelimit", "secondary"
        gh.fail(None); gh.slow(2.0)                # answer, but 2 s late

It plays the parts of the API that nmr uses, the way GitHub answers them:

* ``GET /user``: the token's user; 401 ``Bad credentials`` for an unknown token.
* ``GET /user/orgs``, ``GET /user/repos``: paginated (``per_page`` up to 100, ``page``) with
  ``Link: <...>; rel="next"`` headers; ``/user/repos`` lists the repositories the user has a
  permission on, each with its ``permissions`` block.
* ``GET /repos/{owner}/{repo}``: case-insensitive; a private repository is a 404 for users
  without access; public ones are visible to everyone, with ``pull`` only.
* Every 200 carries a weak ``ETag`` (per body and caller); ``If-None-Match`` with it is a 304.
* Rate-limit headers on every answer; ``fail("ratelimit")`` answers 403 with
  ``X-RateLimit-Remaining: 0`` and a reset time, ``fail("secondary")`` 403 with ``Retry-After``.

Nothing here reaches the network: the server binds 127.0.0.1 on a free port. The
``fake_github`` fixture below gives a started one per test; ``python -m tests.fakegithub``
runs one by hand.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import http.server
import json
import threading
import time
import typing as t
import urllib.parse

import pytest

LEVELS = ("pull", "triage", "push", "maintain", "admin")
FAILURES = ("error", "drop", "ratelimit", "secondary")


class FakeClock:
    """Monotonic seconds that only move when a test says so (pass as ``clock=``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def permissions_block(level: str | None) -> dict[str, bool]:
    """GitHub's ``permissions`` object for a role (each role includes the ones below it)."""
    rank = LEVELS.index(level) if level else -1
    return {name: rank >= i for i, name in enumerate(LEVELS)}


class FakeGitHub:
    """A threaded fake GitHub API server. Thread-safe; start/stop it or use ``with``."""

    def __init__(self, *, prefix: str = "", default_per_page: int = 30, port: int = 0) -> None:
        self.prefix = prefix.rstrip("/")
        self._port = port
        self.default_per_page = default_per_page
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, t.Any]] = {}  # token -> {"login", "id", "orgs"}
        self._repos: dict[str, dict[str, t.Any]] = {}  # lower full name -> repo record
        self._counts: collections.Counter[str] = collections.Counter()
        self._not_modified = 0
        self._failure: str | None = None
        self._failure_reset = 60
        self._delay = 0.0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(_Handler):
            github = fake

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one poll interval
            name="fakegithub",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeGitHub is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The API base URL, to use as ``auth.github.api_url``."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    # -- the world -------------------------------------------------------------------------

    def add_user(self, login: str, token: str | None = None, *, orgs: t.Iterable[str] = ()) -> str:
        """Add a user who authenticates with ``token`` (default ``ghp_<login>``); returns it."""
        token = token or f"ghp_{login}"
        with self._lock:
            self._users[token] = {"login": login, "id": len(self._users) + 1, "orgs": list(orgs)}
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._users.pop(token, None)

    def add_repo(self, full_name: str, *, private: bool = True, perms: t.Mapping[str, str] | None = None) -> None:
        """Add a repository; ``perms`` maps a login to pull/triage/push/maintain/admin."""
        owner, _, name = full_name.partition("/")
        for level in (perms or {}).values():
            if level not in LEVELS:
                raise ValueError(f"unknown permission {level!r}; use one of {LEVELS}")
        with self._lock:
            self._repos[full_name.lower()] = {
                "owner": owner,
                "name": name,
                "private": private,
                "perms": {k.lower(): v for k, v in (perms or {}).items()},
            }

    def set_permission(self, full_name: str, login: str, level: str | None) -> None:
        """Grant ``level`` to ``login`` on a repository, or take all access away with None."""
        if level is not None and level not in LEVELS:
            raise ValueError(f"unknown permission {level!r}; use one of {LEVELS}")
        with self._lock:
            perms = self._repos[full_name.lower()]["perms"]
            if level is None:
                perms.pop(login.lower(), None)
            else:
                perms[login.lower()] = level

    # -- failure switches ------------------------------------------------------------------

    def fail(self, mode: str | None, *, reset_in: int = 60) -> None:
        """Make every request fail: ``"error"`` (500), ``"drop"`` (connection closed without an
        answer), ``"ratelimit"`` (403, X-RateLimit-Remaining: 0, reset in ``reset_in`` s),
        ``"secondary"`` (403 with Retry-After: ``reset_in``). None answers normally again."""
        if mode is not None and mode not in FAILURES:
            raise ValueError(f"unknown failure {mode!r}; use one of {FAILURES}")
        with self._lock:
            self._failure = mode
            self._failure_reset = reset_in

    def slow(self, seconds: float) -> None:
        """Wait ``seconds`` before every answer (0 to stop)."""
        with self._lock:
            self._delay = seconds

    # -- counters --------------------------------------------------------------------------

    def calls(self, path: str | None = None) -> int:
        """Requests received on ``path`` (without prefix or query), or on all paths."""
        with self._lock:
            return self._counts[path] if path is not None else sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def not_modified(self) -> int:
        """How many 304 answers were sent."""
        with self._lock:
            return self._not_modified

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._not_modified = 0

    # -- request handling (called from server threads) -------------------------------------

    def _record(self, path: str) -> tuple[str | None, float, int]:
        with self._lock:
            self._counts[path] += 1
            return self._failure, self._delay, self._failure_reset

    def _user_for(self, token: str) -> dict[str, t.Any] | None:
        with self._lock:
            user = self._users.get(token)
            return dict(user) if user else None

    def _repo_json(self, repo: dict[str, t.Any], login: str | None) -> dict[str, t.Any] | None:
        level = repo["perms"].get(login.lower()) if login else None
        if level is None and repo["private"]:
            return None
        full = f"{repo['owner']}/{repo['name']}"
        data: dict[str, t.Any] = {
            "name": repo["name"],
            "full_name": full,
            "owner": {"login": repo["owner"]},
            "private": repo["private"],
            "visibility": "private" if repo["private"] else "public",
            "html_url": f"https://github.com/{full}",
        }
        if login is not None:
            data["permissions"] = permissions_block(level or "pull")
        return data

    def _answer(
        self, path: str, query: dict[str, list[str]], user: dict[str, t.Any] | None
    ) -> tuple[int, t.Any, dict[str, str]]:
        """(status, JSON body, extra headers) for a GET on ``path`` by ``user``."""
        login = user["login"] if user else None
        if path == "/user":
            if user is None:
                return 401, {"message": "Requires authentication"}, {}
            return 200, {"login": login, "id": user["id"], "type": "User"}, {}
        if path == "/user/orgs":
            if user is None:
                return 401, {"message": "Requires authentication"}, {}
            return self._page(path, query, [{"login": o} for o in user["orgs"]])
        if path == "/user/repos":
            if user is None:
                return 401, {"message": "Requires authentication"}, {}
            with self._lock:
                mine = [
                    self._repo_json(r, login)
                    for _k, r in sorted(self._repos.items())
                    if t.cast(str, login).lower() in r["perms"]
                ]
            return self._page(path, query, mine)
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "repos":
            with self._lock:
                repo = self._repos.get(f"{parts[1]}/{parts[2]}".lower())
                data = self._repo_json(repo, login) if repo else None
            if data is None:
                return 404, {"message": "Not Found"}, {}
            return 200, data, {}
        return 404, {"message": "Not Found"}, {}

    def _page(self, path: str, query: dict[str, list[str]], items: list[t.Any]) -> tuple[int, t.Any, dict[str, str]]:
        try:
            per_page = min(100, max(1, int(query.get("per_page", [self.default_per_page])[0])))
            page = max(1, int(query.get("page", ["1"])[0]))
        except ValueError:
            return 400, {"message": "bad pagination"}, {}
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(p: int) -> str:
            return f"{self.url}{path}?per_page={per_page}&page={p}"

        rels = []
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            rels += [f'<{link(page - 1)}>; rel="prev"', f'<{link(1)}>; rel="first"']
        return 200, chunk, {"Link": ", ".join(rels)} if rels else {}

    def _note_304(self) -> None:
        with self._lock:
            self._not_modified += 1


class _Handler(http.server.BaseHTTPRequestHandler):
    github: FakeGitHub
    protocol_version = "HTTP/1.1"  # keep-alive, as GitHub; every answer has Content-Length
    timeout = 10  # idle keep-alive connections end by themselves

    def log_message(self, format: str, *args: t.Any) -> None:
        pass  # quiet: tests read counters, not logs

    def do_GET(self) -> None:
        gh = self.github
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if gh.prefix:
            if not path.startswith(gh.prefix + "/"):
                self._send(404, {"message": "Not Found"})
                return
            path = path[len(gh.prefix) :]
        failure, delay, reset_in = gh._record(path)
        if delay:
            time.sleep(delay)
        if failure == "drop":
            self.close_connection = True
            return  # no answer at all: the client sees the connection close
        if failure == "error":
            self._send(500, {"message": "Server Error"})
            return
        if failure == "ratelimit":
            self._send(
                403,
                {"message": "API rate limit exceeded for user ID 1."},
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + reset_in),
                },
            )
            return
        if failure == "secondary":
            self._send(
                403,
                {"message": "You have exceeded a secondary rate limit."},
                {"Retry-After": str(reset_in)},
            )
            return
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        user = None
        if auth:
            user = gh._user_for(token.strip()) if scheme.lower() in ("token", "bearer") else None
            if user is None:
                self._send(401, {"message": "Bad credentials"})
                return
        status, body, headers = gh._answer(path, urllib.parse.parse_qs(url.query), user)
        if status == 200:
            raw = json.dumps(body, sort_keys=True).encode()
            digest = hashlib.sha256(raw + token.encode()).hexdigest()[:20]  # varies per caller
            etag = f'W/"{digest}"'
            headers["ETag"] = etag
            if self.headers.get("If-None-Match") == etag:
                gh._note_304()
                self._send(304, None, headers)
                return
        self._send(status, body, headers)

    def _send(self, status: int, body: t.Any, headers: dict[str, str] | None = None) -> None:
        raw = b"" if body is None else json.dumps(body, sort_keys=True).encode()
        all_headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(raw)),
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            **(headers or {}),  # a rate-limited answer overrides the two above
        }
        try:
            self.send_response(status)
            for name, value in all_headers.items():
                self.send_header(name, value)
            self.end_headers()
            if raw:
                self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. it timed out first)


@pytest.fixture
def fake_github() -> t.Iterator[FakeGitHub]:
    """A started FakeGitHub, stopped after the test. Import it into a conftest to use it."""
    with FakeGitHub() as gh:
        yield gh


def build(argv: list[str] | None = None) -> FakeGitHub:
    """A FakeGitHub (not started) with the world the command-line flags describe."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.fakegithub",
        description="Serve a fake GitHub API on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--prefix", default="", help='API path prefix, e.g. "/api/v3" (GHE)')
    parser.add_argument("--user", action="append", default=[], help="LOGIN[:TOKEN[:ORG,ORG]]")
    parser.add_argument("--repo", action="append", default=[], help="OWNER/NAME[:public]")
    parser.add_argument("--perm", action="append", default=[], help="OWNER/NAME=LOGIN:LEVEL")
    args = parser.parse_args(argv)
    gh = FakeGitHub(prefix=args.prefix, port=args.port)
    for spec in args.user:
        login, _, rest = spec.partition(":")
        token, _, orgs = rest.partition(":")
        gh.add_user(login, token or None, orgs=[o for o in orgs.split(",") if o])
    for spec in args.repo:
        name, _, visibility = spec.partition(":")
        gh.add_repo(name, private=visibility != "public")
    for spec in args.perm:
        name, _, grant = spec.partition("=")
        login, _, level = grant.partition(":")
        gh.set_permission(name, login, level)
    return gh


def main() -> None:
    """``python -m tests.fakegithub --user alice:ghp_alice --repo acme/widgets
    --perm acme/widgets=alice:push``"""
    with build() as gh, contextlib.suppress(KeyboardInterrupt):
        print(f"fake GitHub API at {gh.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
