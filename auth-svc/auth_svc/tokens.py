"""Issuing tokens: short-lived ES256 access JWTs and opaque, rotated refresh tokens."""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import timedelta

import jwt
from flask import current_app, request

from svcommon import security_events
from svcommon.errors import APIError
from svcommon.timeutil import iso, utcnow_naive

from . import repository as repo
from .extensions import db, keyring


def issue_access_token(user: dict, *, cnf_jkt: str | None = None, device_id: str | None = None,
                       audience: str | None = None) -> tuple[str, int]:
    cfg = current_app.config
    now = int(time.time())
    exp = now + int(cfg["ACCESS_TOKEN_TTL"])
    claims = {"iss": cfg["JWT_ISSUER"], "aud": audience or cfg["JWT_AUDIENCE"], "sub": user["id"],
              "name": user["username"], "role": user["role"], "iat": now, "nbf": now, "exp": exp,
              "jti": uuid.uuid4().hex}
    if cnf_jkt:
        claims["cnf"] = {"jkt": cnf_jkt}
        claims["did"] = device_id
    kid, key = keyring().signing_key()
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}), exp


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_refresh_token(conn, user_id: str, family_id: str | None = None) -> str:
    token = secrets.token_urlsafe(32)
    expires = utcnow_naive() + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL"])
    repo.insert_refresh(conn, uuid.uuid4().hex, token_hash(token), user_id, family_id or uuid.uuid4().hex, expires,
                        request.remote_addr, request.headers.get("User-Agent"))
    return token


def token_pair(conn, user: dict, family_id: str | None = None) -> dict:
    access, exp = issue_access_token(user)
    refresh = new_refresh_token(conn, user["id"], family_id)
    return {"access_token": access, "token_type": "Bearer", "expires_at": iso(exp), "refresh_token": refresh,
            "user": public_user(user)}


def public_user(user: dict) -> dict:
    return {"id": user["id"], "username": user["username"], "email": user["email"], "role": user["role"]}


def rotate_refresh_token(token: str) -> dict:
    """Exchange a refresh token for a new pair. A token used twice means it was stolen (or
    replayed): the whole family is revoked and both holders must log in again."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise APIError(401, "invalid_refresh_token", "refresh token is invalid")
    conn = db.conn()
    row = repo.refresh_for_update(conn, token_hash(token))
    now = utcnow_naive()
    if row is None or row["revoked_at"] is not None:
        conn.rollback()
        raise APIError(401, "invalid_refresh_token", "refresh token is invalid or revoked")
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
    if row["rotated_at"] is not None and row["revoked_at"] is None and now - row["rotated_at"] <= grace:
        # Two tabs refreshing with the same cookie at once: the loser is no thief. Nothing
        # is issued to it (it retries with the cookies the winner got), nothing is revoked.
        conn.rollback()
        raise APIError(409, "refresh_token_superseded",
                       "this session was just refreshed by another request; retry with the current cookies")
    if row["rotated_at"] is not None:
        repo.revoke_family(conn, row["family_id"])
        conn.commit()
        security_events.record("refresh_reuse", "a rotated refresh token was reused; its family was revoked", row["user_id"])
        raise APIError(401, "refresh_token_reused", "refresh token was already used; please log in again")
    if row["expires_at"] < now:
        conn.rollback()
        raise APIError(401, "invalid_refresh_token", "refresh token expired; please log in again")
    user = repo.user_by_id(conn, row["user_id"])
    if user is None or user["disabled"]:
        repo.revoke_family(conn, row["family_id"])
        conn.commit()
        raise APIError(401, "account_disabled", "account is disabled")
    repo.mark_rotated(conn, row["id"])
    pair = token_pair(conn, user, row["family_id"])
    conn.commit()
    return pair


def revoke_refresh_token(token: str) -> None:
    if not isinstance(token, str) or not token:
        return
    conn = db.conn()
    row = repo.refresh_for_update(conn, token_hash(token))
    if row is not None:
        repo.revoke_family(conn, row["family_id"])
    conn.commit()
