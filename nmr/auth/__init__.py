"""Authentication and authorisation: the ``Authenticator`` interface, ``Identity`` and the factory.

Every view asks the same two questions through the service layer: *who is this?*
(``identify``) and *may they do this to that package?* (``authorize``). Backends answer by
raising the domain errors of ``nmr.errors``:

* ``Unauthorized`` (401): no credentials where some are needed, or credentials the backend rejects.
* ``NotFound`` (404): the caller may not even read the package (its existence must not leak).
* ``Forbidden`` (403): the caller may read but lacks the level the action needs.
* ``Unavailable`` (503): the backend cannot decide right now (never a 401 for that).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import hashlib
import typing as t

if t.TYPE_CHECKING:
    from nmr.config import Config


class Action(enum.Enum):
    """What a request wants to do to a package."""

    READ = "read"  # install, view, packument, tarball, dist-tag ls, search hit
    WRITE = "write"  # publish a new version, dist-tag add/rm, deprecate/undeprecate
    UNPUBLISH = "unpublish"  # unpublish a version or the package
    REBIND = "rebind"  # move the package to another repository


@dataclasses.dataclass(frozen=True)
class Repository:
    """A source repository a package is bound to (GitHub ``owner/name``, compared case-insensitively)."""

    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def same_as(self, other: Repository | None) -> bool:
        return other is not None and self.full_name.lower() == other.full_name.lower()

    def to_json(self) -> dict[str, str]:
        return {"owner": self.owner, "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, str] | None) -> Repository | None:
        return cls(data["owner"], data["name"]) if data else None


@dataclasses.dataclass(frozen=True)
class Identity:
    """The caller. ``login`` is None for anonymous callers.

    ``token`` is kept for the length of one request so the backend can ask GitHub on the
    caller's behalf; it is excluded from ``repr`` and must never be logged or stored.
    ``token_id`` (a SHA-256 of the token) is what caches use as a key.
    """

    login: str | None
    token: str = dataclasses.field(default="", repr=False, compare=False)
    email: str = ""

    @property
    def token_id(self) -> str:
        return hashlib.sha256(self.token.encode()).hexdigest() if self.token else ""

    @property
    def anonymous(self) -> bool:
        return self.login is None


ANONYMOUS = Identity(login=None)


class Authenticator(abc.ABC):
    """The authorisation backend chosen by ``auth.type``. Thread-safe."""

    #: Shown at startup; ``none`` uses it to warn loudly.
    startup_warning: str | None = None

    @abc.abstractmethod
    def identify(self, token: str | None) -> Identity:
        """Map a bearer token (or the password part of Basic auth) to an ``Identity``.

        ``None`` means the request carried no credentials: return ``ANONYMOUS``. A token the
        backend rejects raises ``Unauthorized``; an outage raises ``Unavailable``.
        """

    @abc.abstractmethod
    def authorize(self, identity: Identity, action: Action, package: str, repository: Repository | None) -> None:
        """Return if ``identity`` may do ``action`` on ``package``, bound to ``repository``.

        ``repository`` is None when the package has no binding (auth backends that do not bind,
        or a name never published). Raise ``Unauthorized``/``NotFound``/``Forbidden``/``Unavailable``.
        """

    @abc.abstractmethod
    def bind(self, identity: Identity, package: str, manifest: dict[str, t.Any]) -> Repository | None:
        """The repository a version's manifest names, checked against the package scope.

        Called on every publish. Returns None when this backend does not bind packages.
        Raises ``BadRequest`` when the manifest has no usable ``repository`` (saying what to add)
        and ``Forbidden`` when the repository's owner does not match the scope.
        """

    @abc.abstractmethod
    def readable(self, identity: Identity, packages: list[tuple[str, Repository | None]]) -> set[str]:
        """The names among ``packages`` that ``identity`` may read (for search)."""

    @abc.abstractmethod
    def login(self, username: str, password: str) -> str:
        """``npm login --auth-type=legacy``: check the credentials, return the token to store."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""


def make_authenticator(config: Config) -> Authenticator:
    """Build the backend named by ``auth.type``."""
    kind = config.get("auth.type")
    if kind == "none":
        from nmr.auth.none import NoAuth

        return NoAuth()
    if kind == "github":
        from nmr.auth.github import GitHubAuth  # type: ignore[import-not-found,unused-ignore]

        return GitHubAuth.from_config(config)
    raise ValueError(f"unknown auth.type {kind!r}")
