"""Users: couch login (``npm login --auth-type=legacy``), whoami, logout, user documents."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from nmr.api.helpers import identity, json_object, services
from nmr.errors import BadRequest, NotFound, Unauthorized

bp = Blueprint("users", __name__)


@bp.get("/-/whoami")
def whoami() -> Response:
    return jsonify({"username": services().registry.whoami(identity())})


@bp.put("/-/user/org.couchdb.user:<username>")
def login(username: str) -> Response:
    body = json_object()
    name, password = body.get("name", username), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not password:
        raise BadRequest("login needs 'name' and 'password' (your GitHub login and a personal access token)")
    try:
        token = services().registry.login(name, password)
    except Unauthorized as exc:
        # Basic makes npm print "Incorrect or missing password" rather than "token invalid".
        raise Unauthorized(exc.message, headers={"WWW-Authenticate": 'Basic realm="nmr"'}) from None
    response = jsonify(
        {
            "ok": True,
            "id": f"org.couchdb.user:{name}",
            "rev": "_we_dont_use_revs_any_more",
            "token": token,
        }
    )
    response.status_code = 201
    return response


@bp.get("/-/user/org.couchdb.user:<username>")
def user_document(username: str) -> Response:
    who = identity()
    if who.login is None or who.login.lower() != username.lower():
        raise NotFound(f"user {username} is not known here; accounts are GitHub accounts")
    return jsonify({"name": who.login, "email": who.email})


@bp.delete("/-/user/token/<path:_token>")
def logout(_token: str) -> Response:
    # Tokens are GitHub's: nmr cannot revoke them, and npm must still clear its local copy.
    return jsonify({"ok": True})


@bp.post("/-/v1/login")
def web_login() -> Response:
    raise NotFound("web login is not supported: run 'npm login --auth-type=legacy' with your GitHub login and a token")
