"""Account operations shared by the JSON API and the HTML pages."""
from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from flask import current_app, request

from svcommon import security_events
from svcommon.db import IntegrityError
from svcommon.errors import APIError
from svcommon.passwords import hash_password, verify_password
from svcommon.timeutil import utcnow_naive

from . import repository as repo
from . import mailer, throttle, tokens, validation
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


def change_password(user_id: str, current: str, new: str, refresh_token: str | None) -> None:
    """Re-authenticate with the current password, then set the new one; every other session
    (refresh-token family) of the user is revoked, the one making the change stays."""
    conn = db.conn()
    user = repo.user_by_username(conn, (repo.user_by_id(conn, user_id) or {}).get("username", ""))
    if user is None or user["disabled"]:
        raise APIError(401, "account_disabled", "account is disabled or gone")
    if not verify_password(current, user["password_hash"]):
        security_events.record("password_change_refused", "wrong current password", user_id)
        raise APIError(400, "invalid_input", "Current password is wrong.",
                       fields={"current_password": ["Current password is wrong."]})
    errors = validation.password_errors(new, user["username"], user["email"], name="new_password")
    if errors:
        raise validation.invalid(errors)
    repo.set_password_hash(conn, user_id, hash_password(new))
    family = repo.family_of(conn, tokens.token_hash(refresh_token)) if refresh_token else None
    revoked = repo.revoke_user_tokens_except(conn, user_id, family or "")
    conn.commit()
    security_events.record("password_changed", f"other sessions revoked: {revoked}", user_id)


def sign_out_everywhere(user_id: str) -> None:
    """Every refresh-token family of the user revoked and every playback session ended."""
    conn = db.conn()
    families = repo.revoke_user_tokens(conn, user_id)
    sessions = repo.end_playback_sessions(conn, user_id, "ended_by_user")
    conn.commit()
    security_events.record("signed_out_everywhere", f"tokens revoked: {families}, sessions ended: {sessions}", user_id)


def issue_reset_link(admin_id: str, user_id: str) -> tuple[dict, str, datetime]:
    """A one-time reset token for the user (stored hashed): (user, token, expires_at)."""
    conn = db.conn()
    user = repo.user_by_id(conn, user_id) if len(user_id) <= 64 else None
    if user is None:
        raise APIError(404, "not_found", "no such user")
    token = secrets.token_urlsafe(32)
    expires = utcnow_naive() + timedelta(seconds=int(current_app.config["PASSWORD_RESET_TTL_SECONDS"]))
    repo.insert_reset(conn, uuid.uuid4().hex, tokens.token_hash(token), user_id, admin_id, expires)
    conn.commit()
    security_events.record("password_reset_issued", f"reset link issued by admin {admin_id}", user_id)
    return user, token, expires


def reset_link(admin_id: str, user_id: str) -> dict:
    """Issue a reset link and deliver it: ``{user, expires_at, sent_to}`` when mailed (SMTP
    configured), else ``{user, expires_at, url}`` for the admin to pass on."""
    user, token, expires = issue_reset_link(admin_id, user_id)
    url = f"{request.host_url.rstrip('/')}/auth/reset/{token}"
    if not mailer.enabled():
        return {"user": user, "expires_at": expires, "url": url}
    mailer.send(user["email"], "Reset your StreamVault password",
                f"An administrator issued a password reset link for {user['username']}.\n\n{url}\n\n"
                f"It works once, until {expires:%Y-%m-%d %H:%M} UTC.")
    return {"user": user, "expires_at": expires, "sent_to": user["email"]}


def reset_user(token: str) -> dict | None:
    """The user a still-valid reset token belongs to, or None (unknown, used or expired)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        return None
    conn = db.conn()
    row = repo.reset_for_update(conn, tokens.token_hash(token))
    conn.rollback()
    if row is None or row["used_at"] is not None or row["expires_at"] <= utcnow_naive():
        return None
    return repo.user_by_id(conn, row["user_id"])


def reset_password(token: str, new: str) -> dict:
    """Use a reset token once: the new password (policy-checked) and every session signed out."""
    conn = db.conn()
    row = repo.reset_for_update(conn, tokens.token_hash(token)) if isinstance(token, str) else None
    if row is None or row["used_at"] is not None or row["expires_at"] <= utcnow_naive():
        conn.rollback()
        raise APIError(400, "invalid_reset_link", "This reset link is invalid, used or expired.")
    user = repo.user_by_id(conn, row["user_id"])
    errors = validation.password_errors(new, user["username"], user["email"])
    if errors:
        conn.rollback()
        raise validation.invalid(errors)
    repo.set_password_hash(conn, user["id"], hash_password(new))
    repo.mark_reset_used(conn, row["id"])
    repo.revoke_user_tokens(conn, user["id"])
    conn.commit()
    security_events.record("password_reset_used", "password set through a reset link; all sessions revoked", user["id"])
    return user


def user_page(page: int, per_page: int, search: str = "") -> tuple[list[dict], int, int]:
    """(users, pages, total) of the admin list, optionally filtered by username/email."""
    conn = db.conn()
    total = repo.count_users(conn, search)
    return repo.list_users(conn, per_page, (page - 1) * per_page, search), max(1, -(-total // per_page)), total


def admin_update_user(admin_id: str, user_id: str, role: str | None, disabled: bool | None) -> dict:
    """Role and/or disabled flag, effective at once; audited as a security event."""
    conn = db.conn()
    user = repo.user_by_id(conn, user_id) if len(user_id) <= 64 else None
    if user is None:
        raise APIError(404, "not_found", "no such user")
    losing_admin = user["role"] == "admin" and (disabled or (role is not None and role != "admin"))
    if losing_admin and repo.count_active_admins(conn) <= 1:
        raise APIError(409, "last_admin", "the last active admin cannot be demoted or disabled")
    repo.update_user(conn, user_id, role, disabled)
    if disabled:
        repo.revoke_user_tokens(conn, user_id)  # logged out everywhere at the next refresh
        # Access tokens stay valid up to 5 minutes: streaming-svc also checks `disabled` on
        # every call, and playback ends now rather than at the next heartbeat.
        repo.end_playback_sessions(conn, user_id)
    conn.commit()
    changes = ", ".join(f"{k}={v}" for k, v in (("role", role), ("disabled", disabled)) if v is not None)
    security_events.record("admin_user_disabled" if disabled else "admin_user_updated",
                           f"{changes} by admin {admin_id}", user_id, actor_id=admin_id)
    return repo.user_by_id(conn, user_id)


def revoke_device(device_id: str, owner_id: str | None = None, admin_id: str | None = None) -> dict:
    """Revoke a device: the owner's own (``owner_id``) or any user's by an admin (``admin_id``).
    From then on it gets no device token, its live playback sessions are ended at once and
    streaming-svc refuses the tokens it still holds (403 device_revoked). Audited:
    ``device_revoked`` (the owner) or ``admin_device_revoked`` (with the admin as actor)."""
    conn = db.conn()
    device = repo.device_by_id(conn, device_id) if len(device_id) <= 64 else None
    if device is None or (owner_id is not None and device["user_id"] != owner_id):
        raise APIError(404, "not_found", "no such device")
    if repo.revoke_device(conn, device_id) == 0:      # already revoked (or just now, concurrently)
        conn.rollback()
        if admin_id is None:
            raise APIError(404, "not_found", "no such device")
        raise APIError(409, "already_revoked", "this device is already revoked")
    ended = repo.end_device_sessions(conn, device_id)
    conn.commit()
    if admin_id is None:
        security_events.record("device_revoked", f"device {device_id} revoked by its owner; "
                               f"playback sessions ended: {ended}", device["user_id"])
    else:
        security_events.record("admin_device_revoked", f"device {device_id} revoked by admin {admin_id}; "
                               f"playback sessions ended: {ended}", device["user_id"], actor_id=admin_id)
    return repo.device_by_id(conn, device_id)
