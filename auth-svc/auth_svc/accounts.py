"""Account operations shared by the JSON API and the HTML pages."""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app, request

from svcommon import quota, security_events
from svcommon.db import IntegrityError
from svcommon.errors import APIError
from svcommon.openapi import validate_as
from svcommon.passwords import hash_password, verify_password
from svcommon.timeutil import iso, utcnow_naive

from . import repository as repo
from . import mailer, password_policy, throttle, tokens
from . import schemas as S
from .extensions import db

# Verified against when the account does not exist, so timing does not reveal usernames.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def sign_up(form) -> dict:
    """Self-service sign-up from a form or JSON body. Checking the password costs real CPU
    (zxcvbn), valid input or not, so each attempt first counts against the address's
    password-check budget (as POST /api/auth/password-check does); then the input is
    checked whole (S.SignUp) and a valid one is registered."""
    throttle.password_check_attempt(db.conn(), request.remote_addr or "?")
    asked = validate_as(S.SignUp, form)
    return register(asked.username, asked.email, asked.password)


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
    counted = throttle.attempt(conn, username, ip)
    user = repo.user_by_username(conn, username)
    ok = verify_password(password, user["password_hash"] if user else DUMMY_HASH)
    if not ok or user is None:
        throttle.failed(counted)
        security_events.record("login_failed", f"username={username[:64]!r}", user["id"] if user else None)
        raise APIError(401, "invalid_credentials", "wrong username or password")
    throttle.succeeded(conn, counted)        # a right password is no failed guess, disabled or not
    if user["disabled"]:
        security_events.record("login_disabled", "login to a disabled account", user["id"])
        raise APIError(403, "account_disabled", "this account is disabled")
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
    """Re-authenticate with the current password (under the login throttle: a stolen session
    must not be a free password oracle), then set the new one; every other session
    (refresh-token family) of the user is revoked, the one making the change stays."""
    conn = db.conn()
    user = repo.user_with_hash_by_id(conn, user_id)
    if user is None or user["disabled"]:
        raise APIError(401, "account_disabled", "account is disabled or gone")
    ip = request.remote_addr or "?"
    counted = throttle.attempt(conn, user["username"], ip)
    if not verify_password(current, user["password_hash"]):
        throttle.failed(counted)
        security_events.record("password_change_refused", "wrong current password", user_id)
        raise APIError(400, "invalid_input", "Current password is wrong.",
                       fields={"current_password": ["Current password is wrong."]})
    throttle.succeeded(conn, counted)
    password_policy.require(new, user["username"], user["email"], name="new_password")
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


@dataclass(frozen=True)
class ResetLink:
    """An issued reset link: mailed to ``sent_to`` (SMTP configured), else its ``url`` for
    the admin to pass on."""
    user: dict
    expires_at: datetime
    url: str | None = None
    sent_to: str | None = None

    def to_json(self) -> dict:
        out = {"expires_at": iso(self.expires_at)}
        if self.sent_to:
            out["sent_to"] = self.sent_to
        else:
            out["url"] = self.url
        return out


def reset_link(admin_id: str, user_id: str) -> ResetLink:
    """Issue a one-time reset token for the user (stored hashed) and deliver it. Nothing is
    kept unless it was delivered: when the mail fails, the new row and the voiding of the
    user's older links are rolled back (the link they may already hold still works)."""
    conn = db.conn()
    user = repo.user_by_id(conn, user_id) if len(user_id) <= 64 else None
    if user is None:
        raise APIError(404, "not_found", "no such user")
    token = secrets.token_urlsafe(32)
    expires = utcnow_naive() + timedelta(seconds=int(current_app.config["PASSWORD_RESET_TTL_SECONDS"]))
    repo.insert_reset(conn, uuid.uuid4().hex, tokens.token_hash(token), user_id, admin_id, expires)
    url = f"{request.host_url.rstrip('/')}/auth/reset/{token}"
    link = ResetLink(user, expires, url=url)
    if mailer.enabled():
        try:
            mailer.send(user["email"], "Reset your StreamVault password",
                        f"An administrator issued a password reset link for {user['username']}.\n\n{url}\n\n"
                        f"It works once, until {expires:%Y-%m-%d %H:%M} UTC.")
        except BaseException:
            conn.rollback()
            raise
        link = ResetLink(user, expires, sent_to=user["email"])
    conn.commit()
    security_events.record("password_reset_issued", f"reset link issued by admin {admin_id}"
                           + (" (mailed)" if link.sent_to else ""), user_id)
    return link


def _live_reset(row: dict | None) -> bool:
    return row is not None and row["used_at"] is None and row["expires_at"] > utcnow_naive()


def _token_ok(token) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= 200


def reset_user(token: str) -> dict | None:
    """The user a still-valid reset token belongs to, or None (unknown, used or expired)."""
    if not _token_ok(token):
        return None
    conn = db.conn()
    row = repo.reset_by_hash(conn, tokens.token_hash(token))
    return repo.user_by_id(conn, row["user_id"]) if _live_reset(row) else None


def reset_password(token: str, new: str) -> dict:
    """Use a reset token once: the new password (policy-checked), then the account signed out
    everywhere (every refresh-token family revoked, every playback session ended)."""
    conn = db.conn()
    row = repo.reset_for_update(conn, tokens.token_hash(token)) if _token_ok(token) else None
    if not _live_reset(row):
        conn.rollback()
        raise APIError(400, "invalid_reset_link", "This reset link is invalid, used or expired.")
    user = repo.user_by_id(conn, row["user_id"])
    try:
        password_policy.require(new, user["username"], user["email"])
    except APIError:
        conn.rollback()
        raise
    repo.set_password_hash(conn, user["id"], hash_password(new))
    repo.mark_reset_used(conn, row["id"])
    families = repo.revoke_user_tokens(conn, user["id"])
    sessions = repo.end_playback_sessions(conn, user["id"], "ended_by_user")
    conn.commit()
    security_events.record("password_reset_used", "password set through a reset link; "
                           f"tokens revoked: {families}, sessions ended: {sessions}", user["id"])
    return user


class UserPage(NamedTuple):
    """One page of the admin user list (a tuple too: ``users, pages, total = ...``)."""
    users: list[dict]
    pages: int
    total: int


def user_page(page: int, per_page: int, search: str = "") -> UserPage:
    """One page of the admin list, optionally filtered by username/email; each user with
    ``used_bytes`` and ``quota_in_force`` (None = unlimited)."""
    conn = db.conn()
    total = repo.count_users(conn, search)
    users = [with_quota(u) for u in repo.list_users(conn, per_page, (page - 1) * per_page, search)]
    return UserPage(users, max(1, -(-total // per_page)), total)


def with_quota(u: dict) -> dict:
    """The user row plus the upload quota in force for them (svcommon.quota)."""
    default = int(current_app.config["UPLOAD_QUOTA_BYTES"])
    own = u["upload_quota_bytes"]
    return {**u, "used_bytes": int(u.get("used_bytes") or 0), "quota_in_force": quota.in_force(own, default, u["role"]),
            "quota_text": "" if own is None else quota.exact_text(own)}


def admin_update_user(admin_id: str, user_id: str, role: str | None, disabled: bool | None,
                      upload_quota=repo.KEEP) -> dict:
    """Role, disabled flag and/or upload quota (bytes; None = back to the default), effective
    at once (upload-svc reads the quota on every upload it creates); audited as a security
    event."""
    conn = db.conn()
    user = repo.user_by_id(conn, user_id) if len(user_id) <= 64 else None
    if user is None:
        raise APIError(404, "not_found", "no such user")
    losing_admin = user["role"] == "admin" and (disabled or (role is not None and role != "admin"))
    if losing_admin and repo.lock_active_admins(conn) <= 1:
        conn.rollback()
        raise APIError(409, "last_admin", "the last active admin cannot be demoted or disabled")
    repo.update_user(conn, user_id, role, disabled, upload_quota)
    if disabled:
        repo.revoke_user_tokens(conn, user_id)  # logged out everywhere at the next refresh
        # Access tokens stay valid up to 5 minutes: streaming-svc also checks `disabled` on
        # every call, and playback ends now rather than at the next heartbeat.
        repo.end_playback_sessions(conn, user_id)
    conn.commit()
    changes = [f"{k}={v}" for k, v in (("role", role), ("disabled", disabled)) if v is not None]
    if upload_quota is not repo.KEEP:
        changes.append(f"upload_quota={'default' if upload_quota is None else upload_quota}")
    security_events.record("admin_user_disabled" if disabled else "admin_user_updated",
                           f"{', '.join(changes)} by admin {admin_id}", user_id, actor_id=admin_id)
    return with_quota(repo.user_with_usage(conn, user_id))


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
