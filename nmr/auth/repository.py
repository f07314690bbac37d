"""Read a package.json ``repository`` field the way npm does, and name the GitHub repository in it.

npm (through hosted-git-info) accepts many spellings of one repository; a package is bound to
the repository its first publish names, so every spelling must land on the same
``Repository(owner, name)``:

* ``owner/repo`` and ``github:owner/repo`` (shorthand; ``#ref`` suffixes are ignored),
* ``https://github.com/owner/repo`` (also http, ``www.``, ``.git``, ``/tree/...``, ``/blob/...``),
* ``git+https://``, ``git://``, ``git+ssh://git@github.com/owner/repo.git``, ``ssh://...``,
* scp-like ``git@github.com:owner/repo.git``,
* the object form ``{"type": "git", "url": <any of the above>, "directory": "packages/x"}``.

Shorthand carries no host, so it means the configured GitHub (github.com, or the GitHub
Enterprise host of ``auth.github.api_url``). URLs must name that host.
"""

from __future__ import annotations

import re
import typing as t
import urllib.parse

from nmr.auth import Repository

# GitHub logins and organisation names: letters, digits and hyphens, not starting with a
# hyphen, at most 39 characters. Enterprise Managed Users add "_<shortcode>", so one
# underscore-separated suffix is allowed too.
_OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:_[A-Za-z0-9]+)?")
_OWNER_MAX = 39
# Repository names: letters, digits, ".", "-", "_", at most 100 characters; "." and ".."
# are refused by GitHub.
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_NAME_MAX = 100

# Shorthand prefixes npm knows for other hosts: recognisably not GitHub.
_OTHER_HOST_PREFIXES = {
    "gitlab": "gitlab.com",
    "bitbucket": "bitbucket.org",
    "gist": "gist.github.com",
}
_URL_SCHEMES = ("https", "http", "git", "ssh", "git+https", "git+http", "git+ssh", "git+git")
_SCP_RE = re.compile(r"(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>(?!//)[^\s]+)")


class RepositoryError(ValueError):
    """The ``repository`` field cannot be used; ``reason`` says why, for the person publishing.

    ``host`` is set when the field names a repository on another host than the configured
    GitHub (so the caller can say "use <host>" rather than "write it like this").
    """

    def __init__(self, reason: str, *, host: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host


def web_host(api_url: str) -> str:
    """The GitHub web host for an API URL: ``https://api.github.com`` -> ``github.com``.

    GitHub Enterprise Server serves its API below the web host (``https://ghe.example.com/api/v3``
    -> ``ghe.example.com``); GitHub Enterprise Cloud with data residency uses an ``api.``
    subdomain (``https://api.acme.ghe.com`` -> ``acme.ghe.com``).
    """
    host = (urllib.parse.urlsplit(api_url).hostname or "").lower()
    return host.removeprefix("api.") if host.startswith("api.") else host


def valid_owner(owner: str) -> bool:
    return len(owner) <= _OWNER_MAX and _OWNER_RE.fullmatch(owner) is not None


def valid_name(name: str) -> bool:
    return len(name) <= _NAME_MAX and name not in (".", "..") and _NAME_RE.fullmatch(name) is not None


def check_repository(field: t.Any, github_host: str) -> Repository:
    """The GitHub repository ``field`` names; ``RepositoryError`` says why it cannot be used."""
    if isinstance(field, dict):
        kind = field.get("type", "git")
        if kind not in ("git", None, ""):
            raise RepositoryError(f'"type" is {kind!r}; only "git" repositories can be used')
        field = field.get("url")
        if field is None:
            raise RepositoryError('the object has no "url"')
    if not isinstance(field, str):
        raise RepositoryError("it is neither a string nor an object with a url")
    spec = field.strip()
    if not spec:
        raise RepositoryError("it is empty")
    host = github_host.lower()

    prefix, colon, rest = spec.partition(":")
    if colon and prefix.lower() == "github":
        return _owner_repo(rest.split("#", 1)[0])
    if colon and prefix.lower() in _OTHER_HOST_PREFIXES:
        raise RepositoryError("it is not on GitHub", host=_OTHER_HOST_PREFIXES[prefix.lower()])

    if "://" in spec:
        return _from_url(spec, host)
    scp = _SCP_RE.fullmatch(spec)
    if scp:  # git@github.com:owner/repo.git
        found = scp.group("host").lower()
        if found != host and "." not in found:  # file:..., npm:..., workspace:... specs
            raise RepositoryError("it is not a repository URL or owner/repo")
        if found != host:
            raise RepositoryError("it is not on the configured GitHub", host=found)
        return _owner_repo(scp.group("path").split("#", 1)[0])
    if spec.count("/") == 1 and ":" not in spec and "@" not in spec:  # owner/repo shorthand
        return _owner_repo(spec.split("#", 1)[0])
    raise RepositoryError("it is not a repository URL or owner/repo")


def parse_repository(field: t.Any, github_host: str) -> Repository | None:
    """The GitHub repository a package.json ``repository`` field names, or None if unusable.

    ``github_host`` is the configured GitHub web host (see ``web_host``). None when the
    field is missing or malformed, names another host, or names an owner or repository
    GitHub would not allow.
    """
    try:
        return check_repository(field, github_host)
    except RepositoryError:
        return None


def _from_url(spec: str, host: str) -> Repository:
    try:
        url = urllib.parse.urlsplit(spec)
        found = (url.hostname or "").lower()
    except ValueError:  # e.g. a malformed port or IPv6 literal
        raise RepositoryError("it is not a valid URL") from None
    if url.scheme.lower() not in _URL_SCHEMES:
        raise RepositoryError(f"the URL scheme {url.scheme!r} is not a git or web URL")
    path = url.path
    # hosted-git-info also accepts git+ssh://git@github.com:owner/repo.git (an scp-style path
    # after an ssh URL); anything after the colon that is not a port is the owner.
    hostport = url.netloc.rpartition("@")[2]
    after_colon = hostport.partition(":")[2]
    if "ssh" in url.scheme.lower() and after_colon and not after_colon.isdigit():
        found = hostport.partition(":")[0].lower()
        path = f"/{after_colon}{path}"
    if found.startswith("www."):
        found = found[4:]
    if found != host:
        raise RepositoryError("it is not on the configured GitHub", host=found or None)
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        raise RepositoryError("the URL does not name an owner and a repository")
    owner, name = parts[0], parts[1]
    # Web URLs may go deeper (/tree/<ref>/<dir>, /blob/...); git URLs may not.
    if len(parts) > 2 and (url.scheme.lower() not in ("http", "https") or parts[2] not in ("tree", "blob")):
        raise RepositoryError("the URL path is not /<owner>/<repository>")
    return _owner_repo(f"{owner}/{name}")


def _strip_git(name: str) -> str:
    return name[:-4] if name.lower().endswith(".git") else name


def _owner_repo(text: str) -> Repository:
    owner, slash, name = text.strip("/").partition("/")
    if not slash or "/" in name:
        raise RepositoryError("it does not name exactly one owner/repository")
    name = _strip_git(name)
    if not valid_owner(owner):
        raise RepositoryError(f"{owner!r} is not a valid GitHub user or organisation name")
    if not valid_name(name):
        raise RepositoryError(f"{name!r} is not a valid GitHub repository name")
    return Repository(owner, name)
