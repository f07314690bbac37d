"""``auth.type = "none"``: everyone may do everything. For local development and tests only."""

from __future__ import annotations

import typing as t

from nmr.auth import Action, Authenticator, Identity, Repository


class NoAuth(Authenticator):
    """Null object: allows every action, binds nothing, and says so loudly at startup."""

    startup_warning = (
        "auth.type = 'none': ANYONE who can reach this server may publish, overwrite tags and "
        "unpublish packages. Use it for local development and tests only."
    )

    def identify(self, token: str | None) -> Identity:
        return Identity(login="anonymous", token=token or "")

    def authorize(self, identity: Identity, action: Action, package: str, repository: Repository | None) -> None:
        return None

    def bind(self, identity: Identity, package: str, manifest: dict[str, t.Any]) -> Repository | None:
        return None

    def readable(self, identity: Identity, packages: list[tuple[str, Repository | None]]) -> set[str]:
        return {name for name, _repo in packages}

    def login(self, username: str, password: str) -> str:
        # Any credentials work; the "token" only needs to be something npm can store.
        return f"nmr-none-{username}"
