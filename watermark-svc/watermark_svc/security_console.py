"""Security console (admin): playback sessions (device, address, watermark id) and security
events, both filtered and paged on the server. Page at /admin/security, data under
/api/admin/security/ (gateway routes to watermark-svc). The console's actions are done by the
services that own the data, through their admin APIs: streaming-svc ends a session
(DELETE /api/admin/sessions/{id}), auth-svc revokes a device (DELETE /api/admin/devices/{id})
and disables a user (PATCH /api/admin/users/{id}); each records an admin_* security event."""
from __future__ import annotations

import re

from flask import Blueprint, jsonify, render_template, request

from svcommon.auth import admin_page, current_principal, require_principal
from svcommon.errors import APIError
from svcommon.params import arg_int, arg_time
from svcommon.timeutil import iso, utcnow_naive
from svcommon.web import short_agent
from svcommon.openapi import SIGNED_IN, responses

from . import repository as repo
from .extensions import api, db
from . import schemas as S

bp = Blueprint("security_console", __name__, template_folder="templates")
PER_PAGE, MAX_PER_PAGE, MAX_PAGE = 25, 100, 100_000
KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")
STATES = ("active", "ended")


@bp.get("/admin/security")
@admin_page
def console():
    return render_template("security.html", user=current_principal(), kinds=repo.event_kinds(db.conn()))


def _filter(conn, **extra) -> repo.ConsoleFilter | None:
    """The filters common to both lists; None when the named user does not exist (no rows)."""
    since, until = arg_time("since"), arg_time("until")
    if since and until and since >= until:
        raise APIError(400, "invalid_input", "'since' must be before 'until'")
    user_id = None
    name = request.args.get("user", "").strip()
    if name:
        if len(name) > 64:
            raise APIError(400, "invalid_input", "user must be a username or a user id of at most 64 characters")
        found = repo.user_by_name_or_id(conn, name)
        if found is None:
            return None
        user_id = found["id"]
    return repo.ConsoleFilter(user_id=user_id, since=since, until=until, **extra)


def _paging() -> tuple[int, int]:
    return arg_int("page", 1, maximum=MAX_PAGE), min(MAX_PER_PAGE, arg_int("per_page", PER_PAGE, maximum=1_000_000))


def _page_json(items: list[dict], page: int, per_page: int, total: int, **extra):
    return jsonify(items=items, page=page, per_page=per_page, total=total, pages=max(1, -(-total // per_page)),
                   **extra)


def _session_json(s: dict, now) -> dict:
    active = s["ended_at"] is None and s["expires_at"] is not None and s["expires_at"] > now
    agent = s["device_user_agent"] or s["session_user_agent"]
    return {
        "session_id": s["session_id"], "watermark_id": s["session_id"], "active": active,
        "state": "active" if active else ("ended" if s["ended_at"] else "expired"), "end_reason": s["end_reason"],
        "video_id": s["video_id"], "video_title": s["video_title"],
        "user_id": s["user_id"], "username": s["username"], "email": s["email"],
        "user_disabled": bool(s["user_disabled"]),
        "device_id": s["device_id"], "device_user_agent": agent, "device_agent": short_agent(agent),
        "device_screen": s["screen"], "device_timezone": s["timezone"], "device_language": s["language"],
        "device_first_seen": iso(s["device_first_seen"]), "device_last_seen": iso(s["device_last_seen"]),
        "device_revoked": s["device_revoked_at"] is not None, "ip": s["ip"],
        "started_at": iso(s["started_at"]), "last_heartbeat_at": iso(s["last_heartbeat_at"]),
        "expires_at": iso(s["expires_at"]), "ended_at": iso(s["ended_at"]),
        "codeword_length": s["codeword_length"], "key_epoch": s["key_epoch"],
    }


@bp.get("/api/admin/security/sessions")
@api.validate(query=S.SecuritySessionsQuery, resp=responses({"HTTP_200": S.ConsoleSessions}, 400, 401, 403), tags=["admin"], security=SIGNED_IN)
def sessions():
    require_principal(roles=("admin",))
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise APIError(400, "invalid_input", f"state must be one of {', '.join(STATES)}")
    conn, now = db.conn(), utcnow_naive()
    page, per_page = _paging()
    f = _filter(conn, state=state)
    rows, total = repo.session_page(conn, f, per_page, (page - 1) * per_page, now) if f else ([], 0)
    return _page_json([_session_json(s, now) for s in rows], page, per_page, total,
                      active=repo.live_sessions(conn, now))


@bp.get("/api/admin/security/events")
@api.validate(query=S.SecurityEventsQuery, resp=responses({"HTTP_200": S.SecurityEvents}, 400, 401, 403), tags=["admin"], security=SIGNED_IN)
def events():
    require_principal(roles=("admin",))
    kind = request.args.get("kind") or None
    if kind is not None and not KIND.fullmatch(kind):
        raise APIError(400, "invalid_input", "kind must be an event kind such as login_failed")
    conn = db.conn()
    page, per_page = _paging()
    f = _filter(conn, kind=kind)
    rows, total = repo.event_page(conn, f, per_page, (page - 1) * per_page) if f else ([], 0)
    items = [{**r, "user_disabled": bool(r["user_disabled"]), "created_at": iso(r["created_at"])} for r in rows]
    return _page_json(items, page, per_page, total, kinds=repo.event_kinds(conn))
