"""Who may upload, quotas, and who may see a video (owner or admin; others get 404 so
ids of private videos are not confirmed). Disabled accounts are refused on every call:
their access tokens stay valid up to 5 minutes, so the flag is read from the database."""
from __future__ import annotations

from flask import current_app, request

from svcommon import security_events
from svcommon.auth import Principal, require_principal
from svcommon.errors import APIError

from . import repository as repo
from .extensions import db


def active_principal() -> Principal:
    p = require_principal()
    if not repo.user_active(db.conn(), p.user_id):
        security_events.record("disabled_account", f"{request.method} {request.path}", p.user_id)
        raise APIError(403, "account_disabled", "This account is disabled.")
    return p


def require_uploader() -> Principal:
    p = active_principal()
    if current_app.config["UPLOADS_REQUIRE_ROLE"] and p.role not in ("uploader", "admin"):
        raise APIError(403, "forbidden", "uploading is reserved to uploaders on this server; ask an admin")
    return p


def check_size(length: int) -> None:
    limit = int(current_app.config["UPLOAD_MAX_BYTES"])
    if length > limit:
        raise APIError(413, "too_large", f"file is {length} bytes; the limit is {limit} bytes")


def check_quota(conn, p: Principal, length: int) -> None:
    """Call with the owner's lock held (repo.lock_owner) so two uploads cannot both fit."""
    quota = int(current_app.config["UPLOAD_QUOTA_BYTES"])
    if quota <= 0 or p.is_admin:
        return
    used = repo.usage_bytes(conn, p.user_id)
    if used + length > quota:
        raise APIError(413, "quota_exceeded",
                       f"this upload ({length} bytes) would exceed your storage quota "
                       f"({used} of {quota} bytes used)")


def own_video(conn, video_id: str, p: Principal, for_update: bool = False) -> dict:
    row = repo.video(conn, video_id, for_update) if len(video_id) == 32 and video_id.isalnum() else None
    if row is None or (row["owner_id"] != p.user_id and not p.is_admin):
        raise APIError(404, "not_found", "no such video")
    return row
