"""Security console (admin): active and recent playback sessions with device, address
and watermark id; security events. Page at /admin/security, data under
/api/admin/security/ (both need gateway routes to watermark-svc)."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from svcommon.auth import current_principal, require_principal
from svcommon.params import arg_int
from svcommon.timeutil import iso, utcnow_naive

from . import repository as repo
from .admin_pages import admin_page
from .extensions import db

bp = Blueprint("security_console", __name__, template_folder="templates")


def _limit() -> int:
    return min(500, arg_int("limit", 100, maximum=1_000_000))


@bp.get("/admin/security")
@admin_page
def console():
    return render_template("security.html", user=current_principal())


@bp.get("/api/admin/security/sessions")
def sessions():
    require_principal(roles=("admin",))
    now = utcnow_naive()
    items = []
    for s in repo.recent_sessions(db.conn(), _limit()):
        active = s["ended_at"] is None and s["expires_at"] is not None and s["expires_at"] > now
        items.append({
            "session_id": s["session_id"], "watermark_id": s["session_id"], "active": active,
            "video_id": s["video_id"], "video_title": s["video_title"],
            "user_id": s["user_id"], "username": s["username"],
            "device_id": s["device_id"], "device_user_agent": s["device_user_agent"] or s["session_user_agent"],
            "device_screen": s["screen"], "device_timezone": s["timezone"], "ip": s["ip"],
            "started_at": iso(s["started_at"]), "last_heartbeat_at": iso(s["last_heartbeat_at"]),
            "expires_at": iso(s["expires_at"]), "ended_at": iso(s["ended_at"]),
            "codeword_length": s["codeword_length"], "key_epoch": s["key_epoch"],
        })
    return jsonify(items=items, active=sum(1 for i in items if i["active"]))


@bp.get("/api/admin/security/events")
def events():
    require_principal(roles=("admin",))
    kind = request.args.get("kind") or None
    rows = repo.security_events(db.conn(), _limit(), kind[:40] if kind else None)
    return jsonify(items=[{**r, "created_at": iso(r["created_at"])} for r in rows])
