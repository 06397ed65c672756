"""The admin dashboard, the admin console's landing page (/admin/): counts of users and
videos, storage, playback sessions per day over the last 30 days, playback quality (startup
time p50/p95 and the rebuffer ratio over 24 hours and 7 days), the processing queue with
its dead jobs (reason, and a Retry button that calls POST /api/admin/jobs/{id}/retry) and
the live playback sessions. The same figures as JSON at /api/admin/dashboard."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, jsonify, render_template

from svcommon import jobqueue as queue
from svcommon.auth import admin_page, current_principal, require_principal
from svcommon.timeutil import iso, utcnow_naive
from svcommon.openapi import SIGNED_IN, responses

from . import repository as repo
from .extensions import api, db
from . import schemas as S

bp = Blueprint("dashboard", __name__, template_folder="templates")
DAYS = 30               # views over time: sessions started per UTC day, today included
DEAD_SHOWN = 20         # the newest dead jobs listed (all of them: GET /api/admin/jobs?status=dead)
QOE_WINDOWS = (("last_24h", timedelta(days=1)), ("last_7d", timedelta(days=7)))
VIDEO_STATUSES = ("uploading", "queued", "processing", "ready", "failed", "deleting")


def _users(conn) -> dict:
    out = {"total": 0, "admin": 0, "uploader": 0, "viewer": 0, "disabled": 0}
    for row in repo.user_counts(conn):
        out["total"] += row["n"]
        out[row["role"]] = out.get(row["role"], 0) + row["n"]
        out["disabled"] += row["n"] if row["disabled"] else 0
    return out


def _videos(conn) -> dict:
    by_status = {s: 0 for s in VIDEO_STATUSES}
    for row in repo.video_counts(conn):
        by_status[row["status"]] = row["n"]
    return {"total": sum(by_status.values()), "by_status": by_status}


def _storage(conn) -> dict:
    s = {k: int(v) for k, v in repo.storage(conn).items()}
    media = s["media"] + s["captions"] + s["storyboards"]
    return {"originals_bytes": s["originals"] + s["uploading"], "uploading_bytes": s["uploading"],
            "media_bytes": media, "forensics_bytes": s["forensics"],
            "total_bytes": s["originals"] + s["uploading"] + media + s["forensics"],
            "media_unmeasured": s["media_unmeasured"]}


def _views(conn, now: datetime) -> dict:
    first = now.date() - timedelta(days=DAYS - 1)
    counts = {r["day"]: int(r["n"]) for r in repo.sessions_per_day(conn, datetime.combine(first, time()))}
    days = [{"day": (first + timedelta(days=i)).isoformat(), "sessions": counts.get(first + timedelta(days=i), 0)}
            for i in range(DAYS)]
    return {"days": days, "sessions": sum(d["sessions"] for d in days), "peak": max(d["sessions"] for d in days),
            "total_views": repo.total_views(conn)}


def _quality(conn, now: datetime) -> dict:
    """Per window: startup time p50/p95 (ms) and the rebuffer ratio (stalled time over stalled
    + playing time) of the sessions started in it (streaming-svc credits the figures)."""
    out = {}
    for name, span in QOE_WINDOWS:
        startup, totals = repo.startup_percentiles(conn, now - span), repo.playing_totals(conn, now - span)
        watch, stalled = int(totals["watch_ms"]), int(totals["rebuffer_ms"])
        out[name] = {"startup_sessions": int(startup["n"]),
                     "startup_ms_p50": None if startup["p50"] is None else round(float(startup["p50"])),
                     "startup_ms_p95": None if startup["p95"] is None else round(float(startup["p95"])),
                     "plays": int(totals["plays"]), "watch_seconds": round(watch / 1000, 1),
                     "rebuffer_count": int(totals["stalls"]),
                     "rebuffer_ratio": round(stalled / (watch + stalled), 4) if watch + stalled else None}
    return out


def _queue(conn, now: datetime) -> dict:
    kinds = [{"kind": r["kind"], **{k: int(r[k] or 0) for k in ("queued", "retrying", "running", "dead", "done")}}
             for r in repo.queue_counts(conn, now - timedelta(days=1))]
    dead = queue.listing(conn, "dead", None, DEAD_SHOWN)
    titles = repo.subject_titles(conn, [j["subject"] for j in dead])
    return {"kinds": kinds, "dead_total": sum(k["dead"] for k in kinds),
            "dead": [{"id": j["id"], "kind": j["kind"], "subject": j["subject"],
                      "subject_title": titles.get(j["subject"]), "attempts": j["attempts"],
                      "max_attempts": j["max_attempts"], "last_error": j["last_error"] or "",
                      "updated_at": iso(j["updated_at"])} for j in dead]}


def dashboard_data(conn) -> dict:
    now = utcnow_naive()
    return {"generated_at": iso(now), "users": _users(conn), "videos": _videos(conn), "storage": _storage(conn),
            "views": _views(conn, now), "quality": _quality(conn, now), "queue": _queue(conn, now),
            "sessions": {"active": repo.live_sessions(conn, now)}}


@bp.get("/admin/")
@admin_page
def page():
    return render_template("dashboard.html", user=current_principal(), d=dashboard_data(db.conn()), days=DAYS)


@bp.get("/api/admin/dashboard")
@api.validate(resp=responses({"HTTP_200": S.Dashboard}, 401, 403), tags=["admin"], security=SIGNED_IN)
def data():
    require_principal(roles=("admin",))
    return jsonify(dashboard_data(db.conn()))
