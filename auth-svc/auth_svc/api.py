"""JSON API: register, login, refresh, logout, profile."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from svcommon.auth import REFRESH_COOKIE, csrf_ok, csrf_refused, require_principal
from svcommon.errors import APIError
from svcommon.openapi import PUBLIC, SIGNED_IN, responses, validated_json

from . import accounts, cookies, password_policy, throttle, tokens
from . import repository as repo
from .extensions import api, db
from . import schemas as S

bp = Blueprint("api", __name__, url_prefix="/api/auth")


@bp.post("/register")
@api.validate(json=S.SignUp, skip_validation=True, resp=responses({"HTTP_201": S.Registered}, 400, 403, 409), tags=["auth"], security=PUBLIC)
def register():
    if not current_app.config["SIGNUP_ENABLED"]:
        raise APIError(403, "signup_disabled", "sign-up is disabled on this server")
    user = accounts.sign_up(request.get_json(silent=True))   # checked after the throttle
    return jsonify(user=tokens.public_user(user)), 201


@bp.post("/password-check")
@api.validate(json=S.PasswordCheck, resp=responses({"HTTP_200": S.PasswordVerdict}, 400, 429), tags=["auth"], security=PUBLIC)
def password_check():
    """The strength hint of the password forms: the same rules the server enforces, nothing stored."""
    asked: S.PasswordCheck = validated_json()
    throttle.password_check_attempt(db.conn(), request.remote_addr or "?")
    verdict = password_policy.check(asked.password, (asked.username or "")[:64], (asked.email or "")[:254])
    return jsonify(score=verdict.score, ok=verdict.ok, errors=verdict.errors, suggestions=verdict.suggestions)


@bp.post("/login")
@api.validate(json=S.Credentials, resp=responses({"HTTP_200": S.TokenPair}, 400, 401, 403, 429), tags=["auth"], security=PUBLIC)
def login():
    credentials: S.Credentials = validated_json()
    user = accounts.authenticate(credentials.username, credentials.password)
    conn = db.conn()
    pair = tokens.token_pair(conn, user)
    conn.commit()
    return jsonify(pair)


def _refresh_token() -> tuple[str, bool]:
    """The refresh token from the JSON body, else from the cookie (then CSRF-checked):
    ``(token, came_from_cookie)``; neither is a 400."""
    data = request.get_json(silent=True) or {}
    token = data.get("refresh_token") if isinstance(data, dict) else None
    from_cookie = token is None and REFRESH_COOKIE in request.cookies
    if from_cookie:
        if not csrf_ok():
            raise csrf_refused()
        token = request.cookies[REFRESH_COOKIE]
    if token is None:
        raise APIError(400, "invalid_input", "'refresh_token' is required")
    return token, from_cookie


@bp.post("/refresh")
@api.validate(json=S.RefreshBody, resp=responses({"HTTP_200": S.Refreshed}, 400, 401, 403), tags=["auth"], security=PUBLIC)
def refresh():
    token, from_cookie = _refresh_token()
    pair = tokens.rotate_refresh_token(token)
    if not from_cookie:
        return jsonify(pair)
    # The tokens travel only in the HttpOnly cookies: putting them in the body would hand
    # them to any script on the page, undoing HttpOnly.
    resp = jsonify({k: v for k, v in pair.items() if k not in ("access_token", "refresh_token")})
    cookies.set_session_cookies(resp, pair)
    return resp


@bp.post("/logout")
@api.validate(json=S.RefreshBody, resp=responses({"HTTP_204": None}, 400, 401, 403), tags=["auth"], security=PUBLIC)
def logout():
    token, from_cookie = _refresh_token()
    resp = current_app.response_class(status=204)
    if from_cookie:
        cookies.clear_session_cookies(resp)
    tokens.revoke_refresh_token(token)
    return resp


@bp.get("/profile")
@api.validate(resp=responses({"HTTP_200": S.PublicUser}, 401, 403), tags=["auth"], security=SIGNED_IN)
def profile():
    p = require_principal(scope="read")
    user = repo.user_by_id(db.conn(), p.user_id)
    if user is None or user["disabled"]:
        raise APIError(401, "account_disabled", "account is disabled or gone")
    return jsonify(tokens.public_user(user))
