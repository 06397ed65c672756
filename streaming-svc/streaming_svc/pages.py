"""HTML pages: the library and the watch page (login required: the login page and back; a video
still processing gets a page that waits for it), plus the player script's vendored
shaka-player build (installed from npm, never committed)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template, send_from_directory

from svcommon.auth import current_principal, page_login_required
from svcommon.errors import APIError
from svcommon.timeutil import iso
from svcommon.web import serve_shared_assets

from . import access
from . import repository as repo
from .extensions import db
from .live import media_duration

bp = Blueprint("pages", __name__)
serve_shared_assets(bp)

SHAKA_DIST = Path(__file__).resolve().parents[1] / "node_modules" / "shaka-player" / "dist"
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'")


def _page(template: str, status: int = 200, **ctx):
    resp = current_app.make_response((render_template(template, user=current_principal(), **ctx), status))
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/")
@page_login_required
def library_page():
    return _page("library.html")


@bp.get("/watch/<video_id>")
@page_login_required
def watch_page(video_id: str):
    p = current_principal()
    conn = db.conn()
    try:
        video = access.visible_video(conn, p, video_id)
        access.ready(video)
    except APIError as err:   # a video still processing: its page waits for it (watch-page.js)
        return _page("message.html", err.status, code=err.code, message=err.message, video_id=video_id)
    locked = access.needs_password(p, video) and not repo.has_grant(conn, p.user_id, video_id)
    # (the upload's probe sets videos.duration; the published media always knows it)
    duration = video["duration"] if video["duration"] is not None else media_duration(conn, video_id)
    # The fastest speed the player offers: what the key pace sustains (media seconds released
    # per second once past the burst; pacing.py).
    return _page("watch.html", video=video, locked=locked, uploader=repo.uploader_name(conn, video["owner_id"]),
                 uploaded=iso(video["created_at"]), duration=duration,
                 max_rate=float(current_app.config["KEY_PACE_FACTOR"]))


@bp.get("/vendor/shaka-player.js")
def shaka():
    if not (SHAKA_DIST / "shaka-player.compiled.js").exists():
        raise APIError(500, "missing_asset", "shaka-player is not installed; run scripts/setup.sh (npm install)")
    return send_from_directory(SHAKA_DIST, "shaka-player.compiled.js", mimetype="text/javascript", max_age=3600)
