"""Per-video analytics for its owner (docs/api.md "Views and QoE"): views as streaming-svc
counts them (once per viewer per 30 minutes after 10 s played, the owner never), plays (others'
sessions that played), playing time and the retention curve: the share of plays that watched
each 5 % of the video. JSON at /api/videos/{id}/analytics, a page at
/upload/videos/{id}/analytics linked from the uploader dashboard (an inline SVG curve drawn
here, no script, with the same figures as a table)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from svcommon.auth import page_login_required
from svcommon.openapi import SIGNED_IN, responses

from . import access
from . import repository as repo
from .extensions import api, db
from . import schemas as S

bp = Blueprint("analytics", __name__)
SLICE_PERCENT = 100 // repo.RETENTION_SLICES


def analytics_of(conn, video: dict) -> dict:
    a = repo.video_analytics(conn, video["id"], video["owner_id"])
    plays, watch_ms, stall_ms = int(a["plays"]), int(a["watch_ms"]), int(a["rebuffer_ms"])
    points = []
    for i in range(repo.RETENTION_SLICES):
        n = int(a[f"slice_{i}"] or 0)
        points.append({"percent": i * SLICE_PERCENT, "plays": n, "share": round(n / plays, 4) if plays else 0.0})
    return {"video_id": video["id"], "title": video["title"], "duration": video["duration"],
            "views": int(video["views"]), "plays": plays, "watch_seconds": round(watch_ms / 1000, 1),
            "average_watch_seconds": round(watch_ms / 1000 / plays, 1) if plays else 0.0,
            "rebuffer_ratio": round(stall_ms / (watch_ms + stall_ms), 4) if watch_ms + stall_ms else 0.0,
            "retention": {"slice_percent": SLICE_PERCENT, "points": points}}


@bp.get("/api/videos/<video_id>/analytics")
@api.validate(resp=responses({"HTTP_200": S.Analytics}, 401, 403, 404), tags=["videos"], security=SIGNED_IN)
def data(video_id: str):
    p = access.active_principal("read")
    conn = db.conn()
    return jsonify(analytics_of(conn, access.own_video(conn, video_id, p)))


def spoken_time(seconds: float) -> str:
    """"2 h 5 min", "3 min 20 s", "42 s"."""
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def chart(points: list[dict]) -> dict:
    """The curve in a 200 x 100 box (x: the middle of each slice; y: 100 % at the top)."""
    width = 200 / len(points)
    xy = [(round((i + 0.5) * width, 1), round(98 - 96 * p["share"], 1)) for i, p in enumerate(points)]
    line = " ".join(f"{x},{y}" for x, y in xy)
    return {"line": line, "area": f"{xy[0][0]},98 {line} {xy[-1][0]},98"}


@bp.get("/upload/videos/<video_id>/analytics")
@page_login_required
def page(video_id: str):
    p = access.active_principal(None)
    conn = db.conn()
    a = analytics_of(conn, access.own_video(conn, video_id, p))
    duration = float(a["duration"] or 0)
    rows = [{**pt, "from": clock(duration * pt["percent"] / 100),
             "to": clock(duration * (pt["percent"] + SLICE_PERCENT) / 100)} for pt in a["retention"]["points"]]
    resp = current_app.make_response(render_template(
        "analytics.html", user=p, a=a, rows=rows, chart=chart(a["retention"]["points"]),
        watch_text=spoken_time(a["watch_seconds"]), average_text=spoken_time(a["average_watch_seconds"])))
    resp.headers["Cache-Control"] = "no-store"
    return resp
