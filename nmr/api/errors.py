"""JSON error answers for every failure, registered on the app (routing 404/405 never reach a blueprint)."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from nmr.api.answers import error_answer
from nmr.errors import NmrError, StorageNotFound

log = logging.getLogger("nmr.api")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    answer = error_answer(status, message, headers)
    return Response(answer.body, status=answer.status, headers=answer.headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(NmrError)
    def handle_nmr_error(exc: NmrError) -> Response:
        return error_response(exc.status, exc.message, exc.headers)

    @app.errorhandler(RequestEntityTooLarge)
    def handle_too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return error_response(
            413,
            f"request body too large: the limit is {limit // (1024 * 1024)} MiB "
            "(settings.max_body_size); publish a smaller package or ask the operator to raise it",
        )

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        message = {404: "Not found", 405: "method not allowed on this path"}.get(code, exc.description or exc.name)
        return error_response(code, message)

    @app.errorhandler(StorageNotFound)
    def handle_missing_blob(exc: StorageNotFound) -> Response:
        log.error("metadata lists a tarball that storage does not have: %s", exc)
        return error_response(
            503,
            "the tarball is missing from storage; tell the registry operator",
            {"Retry-After": "60"},
        )

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal error; the registry logged the details")
