"""Account operations shared by the JSON API and the HTML pages."""
from __future__ import annotations

import secrets
import uuid

from flask import request

from svcommon import security_events
from svcommon.db import IntegrityError
from svcommon.errors import APIError
from svcommon.passwords import hash_password, verify_password

from . import repository as repo
from . import throttle
from .extensions import db

# Verified against when the account does not exist, so timing does not reveal usernames.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def register(username: str, email: str, password: str, role: str = "viewer") -> dict:
    """Self-service sign-up (valid input only), counted per client address first."""
    conn = db.conn()
    throttle.signup_attempt(conn, request.remote_addr or "?")
    uid = uuid.uuid4().hex
    try:
        repo.insert_user(conn, uid, username, email, hash_password(password), role)
        conn.commit()
    except IntegrityError:
        conn.rollback()
        raise APIError(409, "taken", "username or email is already registered")
    return repo.user_by_id(conn, uid)


def authenticate(username: str, password: str) -> dict:
    """Check credentials under throttling; the same message for unknown user and bad password."""
    conn = db.conn()
    ip = request.remote_addr or "?"
    throttle.check(conn, username, ip)
    user = repo.user_by_username(conn, username)
    ok = verify_password(password, user["password_hash"] if user else DUMMY_HASH)
    if not ok or user is None:
        throttle.failed(conn, username, ip)
        security_events.record("login_failed", f"username={username[:64]!r}", user["id"] if user else None)
        raise APIError(401, "invalid_credentials", "wrong username or password")
    if user["disabled"]:
        security_events.record("login_disabled", "login to a disabled account", user["id"])
        raise APIError(403, "account_disabled", "this account is disabled")
    throttle.succeeded(conn, username, ip)
    return user


def ensure_admin(conn, username: str, email: str, password: str) -> None:
    """Bootstrap admin from env on first start (never overwrites an existing account)."""
    if not password or repo.user_by_username(conn, username):
        return
    try:
        repo.insert_user(conn, uuid.uuid4().hex, username, email, hash_password(password), "admin")
        conn.commit()
    except IntegrityError:
        conn.rollback()  # another replica created it first
