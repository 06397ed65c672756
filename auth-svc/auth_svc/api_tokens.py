"""API tokens for scripts and CI: created, listed and revoked by their owner, by API
(/api/auth/tokens) and on the account page (account_pages.py). Managing tokens needs a real
sign-in (cookie + CSRF, or an access JWT): ``require_principal()`` names no scope, so an API
token can never create or revoke one. The token is returned once, at creation; only its
SHA-256 is stored (format and verification: svcommon/api_tokens.py)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, jsonify

from svcommon import api_tokens, security_events
from svcommon.auth import Principal, require_principal
from svcommon.errors import APIError
from svcommon.timeutil import iso, utcnow_naive
from svcommon.openapi import SIGNED_IN, responses, validated_json

from . import repository as repo
from .extensions import api, db
from . import schemas as S

bp = Blueprint("api_tokens", __name__, url_prefix="/api/auth/tokens")

MAX_LIVE_TOKENS = 20            # per user, not counting revoked or expired ones
MAX_NAME_LENGTH = S.MAX_TOKEN_NAME
MAX_EXPIRY_DAYS = S.MAX_TOKEN_EXPIRY_DAYS       # (the request's rules: S.NewApiToken)
EXPIRY_CHOICES = (7, 30, 90, 365)     # the account page's select; the API takes any 1..365
DEFAULT_EXPIRY_DAYS = S.DEFAULT_TOKEN_EXPIRY_DAYS


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown this once and never again."""
    secret: str
    record: dict


def scopes_for(role: str) -> tuple[str, ...]:
    """The scopes a user of ``role`` may give a token."""
    return tuple(s for s in api_tokens.SCOPES if role == "admin" or s not in api_tokens.ADMIN_ONLY_SCOPES)


def create(p: Principal, req: S.NewApiToken) -> IssuedToken:
    conn = db.conn()
    user = repo.lock_user(conn, p.user_id)      # the role in force now, not the JWT's
    if user is None or user["disabled"]:
        raise APIError(403, "account_disabled", "This account is disabled.")
    if any(s not in scopes_for(user["role"]) for s in req.scopes):
        message = "The forensics scope is for administrators only."
        raise APIError(400, "invalid_input", message, fields={"scopes": [message]})
    if repo.count_live_api_tokens(conn, p.user_id) >= MAX_LIVE_TOKENS:
        raise APIError(409, "too_many_tokens", f"You have {MAX_LIVE_TOKENS} live API tokens, the most allowed; "
                                               "revoke one you no longer use.")
    tid, secret = uuid.uuid4().hex, api_tokens.new_token()
    repo.insert_api_token(conn, tid, p.user_id, api_tokens.token_hash(secret), req.name, " ".join(req.scopes),
                          utcnow_naive() + timedelta(days=req.expires_in_days))
    record = repo.api_token(conn, tid)
    conn.commit()
    security_events.record("api_token_created", f"API token {tid} '{req.name}' scopes {' '.join(req.scopes)} "
                                                f"expires {iso(record['expires_at'])}", p.user_id)
    return IssuedToken(secret, record)


def revoke(p: Principal, tid: str) -> None:
    conn = db.conn()
    if len(tid) != 32 or repo.revoke_api_token(conn, tid, p.user_id) == 0:
        raise APIError(404, "not_found", "no such API token (revoked already, or not yours)")
    conn.commit()
    security_events.record("api_token_revoked", f"API token {tid}", p.user_id)


def listed(user_id: str) -> list[dict]:
    return repo.api_tokens_of(db.conn(), user_id)


def to_json(t: dict) -> dict:
    return {"id": t["id"], "name": t["name"], "scopes": t["scopes"].split(), "created_at": iso(t["created_at"]),
            "expires_at": iso(t["expires_at"]), "expired": t["expires_at"] <= utcnow_naive(),
            "last_used_at": iso(t["last_used_at"]), "last_used_ip": t["last_used_ip"]}


@bp.post("")
@api.validate(json=S.NewApiToken, resp=responses({"HTTP_201": S.IssuedApiToken}, 400, 401, 403, 409), tags=["api tokens"], security=SIGNED_IN)
def create_token():
    issued = create(require_principal(), validated_json())
    return jsonify(token=issued.secret, api_token=to_json(issued.record)), 201


@bp.get("")
@api.validate(resp=responses({"HTTP_200": S.ApiTokenList}, 401, 403), tags=["api tokens"], security=SIGNED_IN)
def list_tokens():
    return jsonify(items=[to_json(t) for t in listed(require_principal().user_id)],
                   max_tokens=MAX_LIVE_TOKENS, max_expiry_days=MAX_EXPIRY_DAYS)


@bp.delete("/<token_id>")
@api.validate(resp=responses({"HTTP_204": None}, 401, 403, 404), tags=["api tokens"], security=SIGNED_IN)
def revoke_token(token_id: str):
    revoke(require_principal(), token_id)
    return "", 204
