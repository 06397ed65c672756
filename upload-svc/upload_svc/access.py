"""Who may upload, quotas, and who may see a video (owner or admin; others get 404 so
ids of private videos are not confirmed). Disabled accounts are refused on every call:
their access tokens stay valid up to 5 minutes, so the flag is read from the database."""
from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, request

from svcommon import quota, security_events
from svcommon.auth import Principal, require_principal
from svcommon.errors import APIError

from . import repository as repo
from .extensions import db


def active_principal(scope: str | None) -> Principal:
    """``scope``: the API-token scope the route accepts (svcommon.api_tokens; None: none)."""
    p = require_principal(scope=scope)
    if not repo.user_active(db.conn(), p.user_id):
        security_events.record("disabled_account", f"{request.method} {request.path}", p.user_id)
        raise APIError(403, "account_disabled", "This account is disabled.")
    return p


def require_uploader() -> Principal:
    p = active_principal("upload")
    if current_app.config["UPLOADS_REQUIRE_ROLE"] and p.role not in ("uploader", "admin"):
        raise APIError(403, "forbidden", "uploading is reserved to uploaders on this server; ask an admin")
    return p


def check_size(length: int) -> None:
    limit = int(current_app.config["UPLOAD_MAX_BYTES"])
    if length > limit:
        raise APIError(413, "too_large", f"file is {length} bytes; the limit is {limit} bytes")


@contextmanager
def quota_lock(conn, user_id: str):
    """Held while a user's quota is checked and a reservation written (and committed): one
    upload of that user at a time, across replicas."""
    if not repo.lock_owner(conn, user_id):
        raise APIError(503, "quota_busy", "Another upload of yours is being checked against your quota; "
                       "retry in a few seconds.", {"Retry-After": "5"})
    try:
        yield
    finally:
        repo.unlock_owner(conn, user_id)


def usage(conn, user_id: str) -> dict:
    """The user's stored (and reserved) bytes and the quota in force, read now: an admin's
    change of the user's quota or role applies to the next upload. ``quota_bytes`` and
    ``available_bytes`` are None when unlimited."""
    row = repo.quota_usage(conn, user_id) or {"role": "viewer", "upload_quota_bytes": None, "used": 0}
    limit = quota.in_force(row["upload_quota_bytes"], int(current_app.config["UPLOAD_QUOTA_BYTES"]), row["role"])
    used = int(row["used"])
    return {"used_bytes": used, "quota_bytes": limit,
            "available_bytes": None if limit is None else max(0, limit - used)}


def check_quota(conn, p: Principal, length: int) -> int | None:
    """Room left after ``length`` more bytes (None = unlimited), or 413 quota_exceeded.
    Call under quota_lock and record the reservation (the
    video row's size_bytes) before releasing it, so two uploads cannot both fit."""
    u = usage(conn, p.user_id)
    if u["quota_bytes"] is None:
        return None
    if u["used_bytes"] + length > u["quota_bytes"]:
        raise quota_exceeded(length, u)
    return u["quota_bytes"] - u["used_bytes"] - length


def quota_exceeded(length: int, u: dict, streaming: bool = False) -> APIError:
    """``streaming``: a body of unknown length stopped after ``length`` bytes."""
    fmt = quota.format_bytes
    return APIError(413, "quota_exceeded",
                    f"This upload ({'at least ' if streaming else ''}{fmt(length)}) would exceed your storage quota: {fmt(u['used_bytes'])} of "
                    f"{fmt(u['quota_bytes'])} used ({u['used_bytes']} of {u['quota_bytes']} bytes). "
                    "Delete videos you no longer need or ask an administrator for more space.")


def own_video(conn, video_id: str, p: Principal, for_update: bool = False) -> dict:
    row = repo.video(conn, video_id, for_update) if len(video_id) == 32 and video_id.isalnum() else None
    if row is None or (row["owner_id"] != p.user_id and not p.is_admin):
        raise APIError(404, "not_found", "no such video")
    return row
