"""Domain errors. Backends and the service raise these; only ``nmr.api`` turns them into HTTP.

Every error carries an HTTP ``status`` and a ``message`` written for the person at the npm
prompt: what went wrong and what to do. npm prints the ``error`` field of the JSON body.
"""

from __future__ import annotations


class NmrError(Exception):
    """Base class: ``status`` and a user-facing ``message``; optional extra ``headers``."""

    status: int = 500
    message: str = "internal error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers: dict[str, str] = headers or {}


class BadRequest(NmrError):
    status = 400
    message = "bad request"


class Unauthorized(NmrError):
    """*401*: no credentials, or credentials GitHub rejects. Always sends WWW-Authenticate."""

    status = 401
    message = "authentication required: add '//<registry>/:_authToken=<GitHub token>' to .npmrc"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="nmr"', **(headers or {})})


class Forbidden(NmrError):
    status = 403
    message = "forbidden"


class NotFound(NmrError):
    status = 404
    message = "Not found"


class Gone(NmrError):
    status = 410
    message = "this version was unpublished"


class Conflict(NmrError):
    status = 409
    message = "conflict"


class PayloadTooLarge(NmrError):
    status = 413
    message = "request body too large"


class Unavailable(NmrError):
    """*503*: a backend (GitHub, storage, upstream) cannot answer now. Sends Retry-After."""

    status = 503
    message = "a backend is unavailable; try again shortly"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int = 30,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, headers={"Retry-After": str(retry_after), **(headers or {})})


class StorageNotFound(FileNotFoundError):
    """A storage backend has no object under the key asked for."""


class StorageUnavailable(Unavailable):
    message = "tarball storage is unavailable; try again shortly"
