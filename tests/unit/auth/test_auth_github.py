"""GitHubAuth against a mocked GitHub API: answers, permission table, caching, outages."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import typing as t

import pytest
import requests
import responses
from responses import matchers

from nmr.auth import ANONYMOUS, Action, Identity, Repository
from nmr.auth.github import GitHubAuth, Level
from nmr.config import load_config
from nmr.errors import BadRequest, Forbidden, NmrError, NotFound, Unauthorized, Unavailable
from tests.fakegithub import FakeClock

#: PyGithub always spells the port out, so the mocked URLs must too.
API = "https://api.github.com:443"


def api(path: str) -> str:
    return f"{API}{path}"


TOKEN = "ghp_alice0123456789abcdefTOKEN"
OTHER_TOKEN = "ghp_bob0123456789abcdefTOKEN"
ALICE = Identity("alice", token=TOKEN)
WIDGETS = Repository("acme", "widgets")
LIST_URL = api("/user/repos?per_page=100")

MakeAuth = t.Callable[..., GitHubAuth]

PERMISSIONS = {
    "pull": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "push": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
}


def repo_json(full_name: str, level: str) -> dict[str, t.Any]:
    return {"full_name": full_name, "private": True, "permissions": PERMISSIONS[level]}


def mock_user(rsps: responses.RequestsMock, login: str = "alice", **kw: t.Any) -> None:
    rsps.get(api("/user"), json={"login": login, "id": 1}, **kw)


def mock_list(rsps: responses.RequestsMock, repos: dict[str, str], headers: dict[str, str] | None = None) -> None:
    rsps.get(
        LIST_URL,
        json=[repo_json(name, level) for name, level in repos.items()],
        headers=headers or {},
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )


def raises_status(exc: pytest.ExceptionInfo[NmrError], status: int) -> None:
    assert exc.value.status == status


# -- identify ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_anonymous_without_asking_github(
    auth: GitHubAuth, rsps: responses.RequestsMock, token: str | None
) -> None:
    assert auth.identify(token) is ANONYMOUS
    assert len(rsps.calls) == 0


def test_identify_maps_token_to_login(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_user(rsps)
    identity = auth.identify(TOKEN)
    assert identity.login == "alice"
    assert identity.token == TOKEN
    assert rsps.calls[0].request.headers["Authorization"] == f"token {TOKEN}"


def test_rejected_token_is_401_with_www_authenticate(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    with pytest.raises(Unauthorized) as exc:
        auth.identify(TOKEN)
    assert exc.value.status == 401
    assert exc.value.headers["WWW-Authenticate"] == 'Bearer realm="nmr"'


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"message": "Server Error"}},
        {"status": 502, "body": "<html>bad gateway</html>"},
        {"status": 503, "body": ""},
        {"body": requests.exceptions.ConnectionError("connection refused")},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
        {"status": 200, "body": "<html>captive portal</html>"},
    ],
    ids=["500", "502", "503", "refused", "read-timeout", "connect-timeout", "not-json"],
)
def test_github_failing_is_503_never_401(
    auth: GitHubAuth, rsps: responses.RequestsMock, failure: dict[str, t.Any]
) -> None:
    rsps.get(api("/user"), **failure)
    with pytest.raises(Unavailable) as exc:
        auth.identify(TOKEN)
    assert exc.value.status == 503
    assert int(exc.value.headers["Retry-After"]) >= 1


def test_primary_rate_limit_is_503_until_reset(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    reset = int(time.time()) + 120
    rsps.get(
        api("/user"),
        status=403,
        json={"message": "API rate limit exceeded for user ID 1."},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    with pytest.raises(Unavailable) as exc:
        auth.identify(TOKEN)
    assert 115 <= int(exc.value.headers["Retry-After"]) <= 122


@pytest.mark.parametrize(
    ("status", "headers", "message", "retry_after"),
    [
        (429, {"Retry-After": "30"}, "Too many requests", 30),
        (403, {"Retry-After": "45"}, "You have exceeded a secondary rate limit.", 45),
        (403, {}, "You have exceeded a secondary rate limit.", 60),
    ],
)
def test_secondary_rate_limits_are_503(
    auth: GitHubAuth,
    rsps: responses.RequestsMock,
    status: int,
    headers: dict[str, str],
    message: str,
    retry_after: int,
) -> None:
    rsps.get(api("/user"), status=status, json={"message": message}, headers=headers)
    with pytest.raises(Unavailable) as exc:
        auth.identify(TOKEN)
    assert exc.value.headers["Retry-After"] == str(retry_after)


def test_rate_limited_token_is_not_asked_again_until_reset(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(api("/user"), status=429, json={"message": "slow down"}, headers={"Retry-After": "30"})
    with pytest.raises(Unavailable):
        auth.identify(TOKEN)
    clock.advance(10)
    with pytest.raises(Unavailable) as exc:
        auth.identify(TOKEN)
    assert int(exc.value.headers["Retry-After"]) <= 21
    assert len(rsps.calls) == 1
    # Rate limits are per token: another user's token is still asked about.
    mock_user(rsps, "bob")
    assert auth.identify(OTHER_TOKEN).login == "bob"
    clock.advance(25)
    mock_user(rsps)
    assert auth.identify(TOKEN).login == "alice"
    assert len(rsps.calls) == 3


def test_after_a_timeout_github_is_left_alone_for_a_while(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(api("/user"), body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(Unavailable):
        auth.identify(TOKEN)
    with pytest.raises(Unavailable):
        auth.identify(OTHER_TOKEN)  # not even tried: every request would wait out a timeout
    assert len(rsps.calls) == 1
    clock.advance(11)
    mock_user(rsps, "bob")
    assert auth.identify(OTHER_TOKEN).login == "bob"


def test_token_never_appears_in_errors_repr_or_logs(
    auth: GitHubAuth,
    rsps: responses.RequestsMock,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub pins its logger to INFO
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    rsps.get(api("/user"), body=requests.exceptions.ConnectionError(f"boom {api('/user')}"))
    errors: list[NmrError] = []
    for _ in range(2):
        with pytest.raises(NmrError) as exc:
            auth.identify(OTHER_TOKEN if errors else TOKEN)
        errors.append(exc.value)
    assert [type(e) for e in errors] == [Unauthorized, Unavailable]
    clock.advance(11)  # past the outage hold-off
    mock_user(rsps, "carol")
    identity = auth.identify("ghp_carolTOKEN")
    for text in [*(f"{e} {e.message} {e.headers} {e!r}" for e in errors), repr(identity)]:
        for token in (TOKEN, OTHER_TOKEN, "ghp_carolTOKEN"):
            assert token not in text
    assert "ghp_carolTOKEN" not in repr(auth)
    assert "ghp_carolTOKEN" not in str(vars(auth))
    assert "GitHub request failed" in caplog.text  # the outage was logged ...
    assert "(token masked)" in caplog.text  # ... PyGithub's debug log ran, masked
    for token in (TOKEN, OTHER_TOKEN, "ghp_carolTOKEN"):
        assert token not in caplog.text


# -- orgs gate ---------------------------------------------------------------------------


def test_orgs_gate_admits_members_case_insensitively(make_auth: MakeAuth, rsps: responses.RequestsMock) -> None:
    auth = make_auth(orgs=["acme", "Widgets-Inc"])
    mock_user(rsps)
    rsps.get(api("/user/orgs"), json=[{"login": "other"}, {"login": "widgets-inc"}])
    assert auth.identify(TOKEN).login == "alice"


def test_orgs_gate_refuses_non_members(make_auth: MakeAuth, rsps: responses.RequestsMock) -> None:
    auth = make_auth(orgs=["acme"])
    mock_user(rsps)
    rsps.get(api("/user/orgs"), json=[{"login": "other"}])
    with pytest.raises(Forbidden) as exc:
        auth.identify(TOKEN)
    assert "alice" in exc.value.message
    assert "acme" in exc.value.message
    assert "read:org" in exc.value.message
    with pytest.raises(Forbidden):  # cached: no more calls
        auth.identify(TOKEN)
    assert len(rsps.calls) == 2


def test_orgs_gate_is_not_asked_for_rejected_tokens(make_auth: MakeAuth, rsps: responses.RequestsMock) -> None:
    auth = make_auth(orgs=["acme"])
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    with pytest.raises(Unauthorized):
        auth.identify(TOKEN)


# -- login -------------------------------------------------------------------------------


def test_login_returns_the_pat_of_that_user(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_user(rsps, "Alice")
    assert auth.login("alice", TOKEN) == TOKEN
    assert auth.login("ALICE", TOKEN) == TOKEN


def test_login_refuses_another_users_pat(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_user(rsps, "alice")
    with pytest.raises(Unauthorized) as exc:
        auth.login("bob", TOKEN)
    assert "bob" in exc.value.message
    assert TOKEN not in exc.value.message


@pytest.mark.parametrize(("username", "password"), [("alice", ""), ("", TOKEN)])
def test_login_refuses_empty_credentials(
    auth: GitHubAuth, rsps: responses.RequestsMock, username: str, password: str
) -> None:
    if password:
        mock_user(rsps)
    with pytest.raises(Unauthorized):
        auth.login(username, password)


def test_login_with_rejected_pat_is_401_and_outage_503(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    with pytest.raises(Unauthorized):
        auth.login("alice", TOKEN)
    rsps.get(api("/user"), status=502)
    with pytest.raises(Unavailable):
        auth.login("bob", OTHER_TOKEN)


# -- authorize: the permission table -----------------------------------------------------

OK, NF, FB = "ok", "404", "403"
TABLE = [
    # level, READ, WRITE, UNPUBLISH, REBIND   (auth.github.unpublish = "admin")
    (None, NF, NF, NF, NF),
    ("pull", OK, FB, FB, FB),
    ("triage", OK, FB, FB, FB),
    ("push", OK, OK, FB, FB),
    ("maintain", OK, OK, FB, FB),
    ("admin", OK, OK, OK, OK),
]
ACTIONS = [Action.READ, Action.WRITE, Action.UNPUBLISH, Action.REBIND]
ROWS = [
    (level, action, "admin", outcome)
    for level, *outcomes in TABLE
    for action, outcome in zip(ACTIONS, outcomes, strict=True)
] + [
    # unpublish = "push" relaxes unpublish only, never rebinding
    ("pull", Action.UNPUBLISH, "push", FB),
    ("push", Action.UNPUBLISH, "push", OK),
    ("maintain", Action.UNPUBLISH, "push", OK),
    ("push", Action.REBIND, "push", FB),
    (None, Action.UNPUBLISH, "push", NF),
]


def check_outcome(auth: GitHubAuth, action: Action, outcome: str, needed: str) -> None:
    if outcome == OK:
        auth.authorize(ALICE, action, "@acme/widgets", WIDGETS)
        return
    expected = NotFound if outcome == NF else Forbidden
    with pytest.raises(expected) as exc:
        auth.authorize(ALICE, action, "@acme/widgets", WIDGETS)
    if outcome == FB:
        assert "acme/widgets" in exc.value.message
        assert needed in exc.value.message


NEEDED = {
    Action.READ: "pull",
    Action.WRITE: "push",
    Action.UNPUBLISH: "admin",
    Action.REBIND: "admin",
}


@pytest.mark.parametrize(("level", "action", "unpublish", "outcome"), ROWS)
def test_permission_table_from_repository_list(
    make_auth: MakeAuth,
    rsps: responses.RequestsMock,
    level: str | None,
    action: Action,
    unpublish: str,
    outcome: str,
) -> None:
    auth = make_auth(unpublish=unpublish)
    mock_list(rsps, {"acme/widgets": level} if level else {"acme/other": "admin"})
    if level is None:
        rsps.get(api("/repos/acme/widgets"), status=404, json={"message": "Not Found"})
    needed = "push" if unpublish == "push" and action == Action.UNPUBLISH else NEEDED[action]
    check_outcome(auth, action, outcome, needed)


@pytest.mark.parametrize(("level", "action", "unpublish", "outcome"), ROWS)
def test_permission_table_from_single_repository(
    make_auth: MakeAuth,
    rsps: responses.RequestsMock,
    level: str | None,
    action: Action,
    unpublish: str,
    outcome: str,
) -> None:
    """A repository missing from the caller's list is asked about directly."""
    auth = make_auth(unpublish=unpublish)
    mock_list(rsps, {})
    if level is None:
        rsps.get(api("/repos/acme/widgets"), status=404, json={"message": "Not Found"})
    else:
        rsps.get(api("/repos/acme/widgets"), json=repo_json("acme/widgets", level))
    needed = "push" if unpublish == "push" and action == Action.UNPUBLISH else NEEDED[action]
    check_outcome(auth, action, outcome, needed)


def test_forbidden_names_repository_and_level(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_list(rsps, {"acme/widgets": "pull"})
    with pytest.raises(Forbidden) as exc:
        auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    assert exc.value.status == 403
    assert "acme/widgets" in exc.value.message
    assert "needs push (write) access" in exc.value.message
    assert "has pull (read) access" in exc.value.message


def test_repository_names_compare_case_insensitively(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_list(rsps, {"Acme/Widgets": "push"})
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", Repository("ACME", "widgets"))


def test_anonymous_is_401_before_asking_github(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    with pytest.raises(Unauthorized) as exc:
        auth.authorize(ANONYMOUS, Action.READ, "@acme/widgets", WIDGETS)
    assert exc.value.headers["WWW-Authenticate"] == 'Bearer realm="nmr"'
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("action", ACTIONS)
def test_unbound_package_is_404(auth: GitHubAuth, rsps: responses.RequestsMock, action: Action) -> None:
    with pytest.raises(NotFound):
        auth.authorize(ALICE, action, "@acme/widgets", None)
    assert len(rsps.calls) == 0


def test_sso_refusal_is_403_with_githubs_reason(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_list(rsps, {})
    rsps.get(
        api("/repos/acme/widgets"),
        status=403,
        json={"message": "Resource protected by organization SAML enforcement."},
    )
    with pytest.raises(Forbidden) as exc:
        auth.authorize(ALICE, Action.READ, "@acme/widgets", WIDGETS)
    assert "SAML" in exc.value.message
    assert "acme" in exc.value.message


def test_token_revoked_between_identify_and_authorize_is_401(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    rsps.get(LIST_URL, status=401, json={"message": "Bad credentials"})
    with pytest.raises(Unauthorized):
        auth.authorize(ALICE, Action.READ, "@acme/widgets", WIDGETS)


@pytest.mark.parametrize(
    "failure",
    [{"status": 500}, {"body": requests.exceptions.ReadTimeout("t")}],
    ids=["500", "timeout"],
)
def test_authorize_during_outage_is_503(
    auth: GitHubAuth, rsps: responses.RequestsMock, failure: dict[str, t.Any]
) -> None:
    rsps.get(LIST_URL, **failure)
    if "status" in failure:  # a 5xx does not stop the direct look-up; a timeout does
        rsps.get(api("/repos/acme/widgets"), **failure)
    with pytest.raises(Unavailable) as exc:
        auth.authorize(ALICE, Action.READ, "@acme/widgets", WIDGETS)
    assert exc.value.headers["Retry-After"]


# -- bind --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "field", "expected"),
    [
        ("@acme/widgets", "github:acme/widgets", WIDGETS),
        (
            "@acme/core",
            {
                "type": "git",
                "url": "git+https://github.com/acme/widgets.git",
                "directory": "packages/core",
            },
            WIDGETS,
        ),
        ("@acme/widgets", "https://github.com/ACME/widgets", Repository("ACME", "widgets")),
        ("@Acme/x", "git@github.com:acme/widgets.git", WIDGETS),
    ],
)
def test_bind_returns_the_repository(
    auth: GitHubAuth,
    rsps: responses.RequestsMock,
    package: str,
    field: object,
    expected: Repository,
) -> None:
    assert auth.bind(ALICE, package, {"name": package, "repository": field}) == expected
    assert len(rsps.calls) == 0  # binding is a local check; authorize asks GitHub


@pytest.mark.parametrize("manifest", [{}, {"repository": None}, {"repository": ""}, {"repository": {}}])
def test_bind_without_repository_says_what_to_add(auth: GitHubAuth, manifest: dict[str, t.Any]) -> None:
    with pytest.raises(BadRequest) as exc:
        auth.bind(ALICE, "@acme/widgets", manifest)
    assert exc.value.status == 400
    assert '"repository": "github:acme/widgets"' in exc.value.message


def test_bind_unusable_repository_says_how_to_write_it(auth: GitHubAuth) -> None:
    with pytest.raises(BadRequest) as exc:
        auth.bind(ALICE, "@acme/widgets", {"repository": "just some text"})
    assert '"repository": "github:acme/widgets"' in exc.value.message


def test_bind_other_host_is_400_naming_both_hosts(auth: GitHubAuth) -> None:
    with pytest.raises(BadRequest) as exc:
        auth.bind(ALICE, "@acme/widgets", {"repository": "https://tok:en@gitlab.com/acme/w.git"})
    assert "gitlab.com" in exc.value.message
    assert "github.com" in exc.value.message
    assert "tok:en" not in exc.value.message


def test_bind_scope_must_match_owner(auth: GitHubAuth) -> None:
    with pytest.raises(Forbidden) as exc:
        auth.bind(ALICE, "@acme/widgets", {"repository": "github:evil/widgets"})
    assert exc.value.status == 403
    assert "@acme" in exc.value.message
    assert "evil/widgets" in exc.value.message


def test_bind_scope_owners_maps_a_scope_to_another_owner(make_auth: MakeAuth) -> None:
    auth = make_auth(scope_owners={"@acme-internal": "acme"})
    manifest = {"repository": "github:acme/widgets"}
    assert auth.bind(ALICE, "@acme-internal/widgets", manifest) == WIDGETS
    with pytest.raises(Forbidden) as exc:  # the mapping replaces the scope's own owner
        auth.bind(ALICE, "@acme-internal/widgets", {"repository": "acme-internal/widgets"})
    assert "scope_owners" in exc.value.message
    with pytest.raises(BadRequest) as missing:
        auth.bind(ALICE, "@acme-internal/widgets", {})
    assert '"github:acme/widgets"' in missing.value.message
    # other scopes are unaffected
    assert auth.bind(ALICE, "@acme/widgets", manifest) == WIDGETS


def test_bind_refuses_unscoped_names(auth: GitHubAuth) -> None:
    with pytest.raises(Forbidden):
        auth.bind(ALICE, "widgets", {"repository": "github:acme/widgets"})


def test_bind_on_enterprise(make_auth: MakeAuth) -> None:
    auth = make_auth(api_url="https://ghe.example.com/api/v3")
    assert auth.bind(ALICE, "@acme/w", {"repository": "https://ghe.example.com/acme/widgets"}) == WIDGETS
    with pytest.raises(BadRequest) as exc:
        auth.bind(ALICE, "@acme/widgets", {"repository": "https://github.com/acme/widgets"})
    assert '"https://ghe.example.com/acme/widgets"' in exc.value.message


def test_bind_host_override(make_auth: MakeAuth) -> None:
    auth = make_auth(api_url="https://ghe.example.com/api/v3", host="code.example.com")
    manifest = {"repository": "git@code.example.com:acme/widgets.git"}
    assert auth.bind(ALICE, "@acme/widgets", manifest) == WIDGETS


# -- caching -----------------------------------------------------------------------------


def test_identity_is_cached_by_token_hash_for_cache_ttl(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    mock_user(rsps, headers={"ETag": 'W/"u1"'})
    assert auth.identify(TOKEN).login == "alice"
    clock.advance(299)
    assert auth.identify(TOKEN).login == "alice"
    assert len(rsps.calls) == 1
    assert list(auth._users.keys()) == [hashlib.sha256(TOKEN.encode()).hexdigest()]


def test_expired_identity_is_revalidated_with_etag(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    mock_user(rsps, headers={"ETag": 'W/"u1"'})
    auth.identify(TOKEN)
    clock.advance(301)
    rsps.get(api("/user"), status=304, match=[matchers.header_matcher({"If-None-Match": 'W/"u1"'})])
    assert auth.identify(TOKEN).login == "alice"
    clock.advance(299)  # the 304 made it fresh again
    assert auth.identify(TOKEN).login == "alice"
    assert len(rsps.calls) == 2


def test_each_token_has_its_own_entry(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_user(rsps, "alice")
    mock_user(rsps, "bob")
    assert auth.identify(TOKEN).login == "alice"
    assert auth.identify(OTHER_TOKEN).login == "bob"
    assert auth.identify(TOKEN).login == "alice"
    assert len(rsps.calls) == 2


def test_rejected_token_is_cached_for_negative_ttl(
    make_auth: MakeAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    auth = make_auth(negative_ttl=30)
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    for _ in range(3):
        with pytest.raises(Unauthorized):
            auth.identify(TOKEN)
    assert len(rsps.calls) == 1
    clock.advance(31)
    mock_user(rsps)  # e.g. GitHub had a hiccup; the token is good after all
    assert auth.identify(TOKEN).login == "alice"
    assert len(rsps.calls) == 2


def test_stale_identity_is_used_only_while_github_fails_and_within_grace(
    make_auth: MakeAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    auth = make_auth(cache_ttl=300, stale_grace=3600)
    mock_user(rsps)
    auth.identify(TOKEN)
    clock.advance(301)
    rsps.get(api("/user"), status=502)
    assert auth.identify(TOKEN).login == "alice"  # stale, GitHub failing
    clock.advance(3600)  # now 3901 s after the fetch: past ttl + grace
    with pytest.raises(Unavailable):
        auth.identify(TOKEN)
    assert len(rsps.calls) == 3


def test_stale_entry_not_used_when_github_answers(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    mock_user(rsps)
    auth.identify(TOKEN)
    clock.advance(301)
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    with pytest.raises(Unauthorized):  # revoked: GitHub's fresh answer wins over the cache
        auth.identify(TOKEN)


def test_stale_negative_is_not_used_during_outage(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(api("/user"), status=401, json={"message": "Bad credentials"})
    with pytest.raises(Unauthorized):
        auth.identify(TOKEN)
    clock.advance(31)
    rsps.get(api("/user"), status=500)
    with pytest.raises(Unavailable):  # 503 tells them to retry; an old "no" may be outdated
        auth.identify(TOKEN)


def test_no_access_is_negatively_cached(auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock) -> None:
    mock_list(rsps, {"acme/other": "push"})
    rsps.get(api("/repos/acme/widgets"), status=404, json={"message": "Not Found"})
    for _ in range(3):
        with pytest.raises(NotFound):
            auth.authorize(ALICE, Action.READ, "@acme/widgets", WIDGETS)
    assert len(rsps.calls) == 2
    clock.advance(31)  # negative expired, the list (300 s) is still fresh
    rsps.get(api("/repos/acme/widgets"), json=repo_json("acme/widgets", "pull"))
    auth.authorize(ALICE, Action.READ, "@acme/widgets", WIDGETS)
    assert len(rsps.calls) == 3


def test_single_repository_answer_is_cached_and_revalidated(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    mock_list(rsps, {})
    rsps.get(
        api("/repos/acme/widgets"),
        json=repo_json("acme/widgets", "push"),
        headers={"ETag": '"r1"'},
    )
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    assert len(rsps.calls) == 2
    clock.advance(301)
    mock_list(rsps, {})
    rsps.get(
        api("/repos/acme/widgets"),
        status=304,
        match=[matchers.header_matcher({"If-None-Match": '"r1"'})],
    )
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    assert len(rsps.calls) == 4


def test_cold_install_costs_list_pages_not_packages(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    """250 repositories, 3 list pages; 250 packages read: 1 + 3 calls, not 250."""
    names = [f"acme/repo{i:03d}" for i in range(250)]
    for page in range(3):
        chunk = names[page * 100 : (page + 1) * 100]
        params = {"per_page": "100"} if page == 0 else {"per_page": "100", "page": str(page + 1)}
        link = f'<https://api.github.com/user/repos?per_page=100&page={page + 2}>; rel="next"' if page < 2 else ""
        rsps.get(
            api("/user/repos"),
            json=[repo_json(n, "pull") for n in chunk],
            headers={"Link": link} if link else {},
            match=[matchers.query_param_matcher(params)],
        )
    mock_user(rsps)
    identity = auth.identify(TOKEN)
    for i, name in enumerate(names):
        owner, repo = name.split("/")
        auth.authorize(identity, Action.READ, f"@acme/pkg{i}", Repository(owner, repo))
    assert len(rsps.calls) == 4
    assert auth.readable(identity, [(f"@acme/p{n}", Repository(*n.split("/"))) for n in names]) == {
        f"@acme/p{n}" for n in names
    }
    assert len(rsps.calls) == 4


def test_list_pages_are_revalidated_with_their_etags(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    page2 = "https://api.github.com/user/repos?per_page=100&page=2"
    rsps.get(
        LIST_URL,
        json=[repo_json("acme/widgets", "push")],
        headers={"ETag": 'W/"p1"', "Link": f'<{page2}>; rel="next"'},
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )
    rsps.get(
        api("/user/repos"),
        json=[repo_json("acme/gadgets", "pull")],
        headers={"ETag": 'W/"p2"'},
        match=[matchers.query_param_matcher({"per_page": "100", "page": "2"})],
    )
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    clock.advance(301)
    rsps.get(
        LIST_URL,
        status=304,
        match=[
            matchers.query_param_matcher({"per_page": "100"}),
            matchers.header_matcher({"If-None-Match": 'W/"p1"'}),
        ],
    )
    rsps.get(  # page 2 changed: the user lost access to gadgets... and got push
        api("/user/repos"),
        json=[repo_json("acme/gadgets", "push")],
        headers={"ETag": 'W/"p2b"'},
        match=[
            matchers.query_param_matcher({"per_page": "100", "page": "2"}),
            matchers.header_matcher({"If-None-Match": 'W/"p2"'}),
        ],
    )
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)  # from the 304'd page
    auth.authorize(ALICE, Action.WRITE, "@acme/gadgets", Repository("acme", "gadgets"))
    assert len(rsps.calls) == 4


def test_stale_permissions_during_outage_then_503_after_grace(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    mock_list(rsps, {"acme/widgets": "push"})
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    clock.advance(301)
    rsps.get(LIST_URL, body=requests.exceptions.ConnectTimeout("down"))
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)  # stale list
    clock.advance(3600)
    with pytest.raises(Unavailable):
        auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    # the list was retried (the hold-off is over), the direct look-up after it was not
    assert [c.request.url for c in rsps.calls] == [LIST_URL] * 3


def test_downgrade_is_seen_after_cache_ttl(auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock) -> None:
    mock_list(rsps, {"acme/widgets": "push"})
    auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)
    clock.advance(301)
    mock_list(rsps, {"acme/widgets": "pull"})
    with pytest.raises(Forbidden):
        auth.authorize(ALICE, Action.WRITE, "@acme/widgets", WIDGETS)


def test_one_list_refresh_for_many_concurrent_requests(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    started = threading.Event()

    def slow_list(request: t.Any) -> tuple[int, dict[str, str], str]:
        started.set()
        time.sleep(0.3)
        return 200, {}, '[{"full_name": "acme/widgets", "permissions": {"pull": true}}]'

    rsps.add_callback(
        responses.GET,
        api("/user/repos"),
        callback=slow_list,
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )
    errors: list[BaseException] = []

    def read() -> None:
        try:
            auth.authorize(ALICE, Action.READ, "@acme/widgets", WIDGETS)
        except BaseException as exc:  # collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert started.is_set()
    assert errors == []
    assert len(rsps.calls) == 1


# -- readable ----------------------------------------------------------------------------


def test_readable_uses_the_list_only(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_list(rsps, {"acme/widgets": "pull", "acme/admin-only": "admin"})
    packages = [
        ("@acme/widgets", WIDGETS),
        ("@acme/widgets-extra", WIDGETS),
        ("@acme/admin", Repository("acme", "Admin-Only")),
        ("@acme/secret", Repository("acme", "secret")),  # not in the list: hidden, no call
        ("@acme/unbound", None),
    ]
    assert auth.readable(ALICE, packages) == {"@acme/widgets", "@acme/widgets-extra", "@acme/admin"}
    assert len(rsps.calls) == 1


def test_readable_includes_cached_direct_answers(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    mock_list(rsps, {})
    rsps.get(api("/repos/octo/public"), json={"full_name": "octo/public", "private": False})
    auth.authorize(ALICE, Action.READ, "@octo/public", Repository("octo", "public"))
    assert auth.readable(ALICE, [("@octo/public", Repository("octo", "public"))]) == {"@octo/public"}
    assert len(rsps.calls) == 2


def test_readable_for_anonymous_is_empty(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    assert auth.readable(ANONYMOUS, [("@acme/widgets", WIDGETS)]) == set()
    assert len(rsps.calls) == 0


# -- configuration -----------------------------------------------------------------------


def test_from_config_reads_every_key() -> None:
    config = load_config(
        environ={},
        overrides={
            "auth": {
                "github": {
                    "api_url": "https://ghe.example.com/api/v3/",
                    "cache_ttl": 60,
                    "negative_ttl": 5,
                    "stale_grace": 100,
                    "orgs": ["acme"],
                    "unpublish": "push",
                    "timeout": 3,
                }
            },
            "registry": {"scope_owners": {"@acme-internal": "acme"}},
        },
    )
    auth = GitHubAuth.from_config(config)
    try:
        assert auth.api_url == "https://ghe.example.com/api/v3"
        assert auth.host == "ghe.example.com"
        assert (auth.cache_ttl, auth.negative_ttl, auth.stale_grace) == (60, 5, 100)
        assert auth.orgs == ("acme",)
        assert auth.timeout == 3
        assert auth.scope_owners == {"@acme-internal": "acme"}
        assert auth._needed[Action.UNPUBLISH] == Level.PUSH
    finally:
        auth.close()


def test_unknown_unpublish_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="unpublish"):
        GitHubAuth(unpublish="everyone")


def test_failures_are_logged_once_per_interval(
    auth: GitHubAuth, rsps: responses.RequestsMock, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.get(api("/user"), status=502)
    for token in ("ghp_1", "ghp_2", "ghp_3"):
        with pytest.raises(Unavailable):
            auth.identify(token)
    warnings = [r for r in caplog.records if r.name == "nmr.auth.github" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "502" in warnings[0].getMessage()
    clock.advance(61)
    with pytest.raises(Unavailable):
        auth.identify("ghp_4")
    warnings = [r for r in caplog.records if r.name == "nmr.auth.github" and r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert len(rsps.calls) == 4


def test_token_that_may_not_read_its_user_is_403_not_503(auth: GitHubAuth, rsps: responses.RequestsMock) -> None:
    rsps.get(api("/user"), status=403, json={"message": "Resource not accessible by integration"})
    with pytest.raises(Forbidden) as exc:
        auth.identify("ghs_installation_token")
    assert "Resource not accessible by integration" in exc.value.message
    assert "personal access token" in exc.value.message


@pytest.mark.parametrize("repo", [Repository("acme", ".."), Repository("..", "x"), Repository("acme", "a/b")])
def test_impossible_repository_names_never_reach_github(
    auth: GitHubAuth, rsps: responses.RequestsMock, repo: Repository
) -> None:
    with pytest.raises(NotFound):
        auth.authorize(ALICE, Action.READ, "@acme/x", repo)
    assert len(rsps.calls) == 0
