"""Administrators end any playback session (the security console's action): the session is
ended in the database at once and dropped from this process's cache; every process refuses
its next key, manifest, init or heartbeat request (410 session_ended) within
SESSION_CACHE_SECONDS. Audited as ``admin_session_ended`` with the admin as the actor."""
from __future__ import annotations

from flask import Blueprint, jsonify

from svcommon import security_events
from svcommon.auth import require_principal
from svcommon.errors import APIError
from svcommon.timeutil import iso, utcnow_naive
from svcommon.openapi import SIGNED_IN, responses

from . import repository as repo
from .extensions import api, db, playback
from . import schemas as S

bp = Blueprint("admin_sessions", __name__, url_prefix="/api/admin/sessions")
ENDED_BY_ADMIN = "ended_by_admin"


@bp.delete("/<sid>")
@api.validate(resp=responses({"HTTP_200": S.EndedByAdmin}, 401, 403, 404, 409), tags=["admin"], security=SIGNED_IN)
def end_session(sid: str):
    admin = require_principal(roles=("admin",))
    conn = db.conn()
    s = repo.session_by_id(conn, sid, for_update=True) if len(sid) == 32 else None
    if s is None:
        raise APIError(404, "not_found", "no such playback session")
    now = utcnow_naive()
    if s["ended_at"] is not None or s["expires_at"] <= now:
        conn.rollback()
        raise APIError(409, "session_not_live", "This playback session has already ended or expired.")
    repo.end_session(conn, sid, ENDED_BY_ADMIN, now)
    conn.commit()
    playback().sessions.drop(sid)
    security_events.record("admin_session_ended", f"session {sid} of video {s['video_id']} (device "
                           f"{s['device_id'] or '-'}) ended by admin {admin.user_id}", s["user_id"],
                           actor_id=admin.user_id)
    return jsonify(session_id=sid, ended_at=iso(now), end_reason=ENDED_BY_ADMIN)
