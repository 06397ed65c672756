"""GET /api/videos/{id}/events: live status as Server-Sent Events ({status, progress,
message}). Polls the database about once a second with a short-lived connection per
poll (an open stream must not pin a pooled connection), sends only changes plus a
keep-alive comment, and ends when the video is ready or failed (or after SSE_MAX_SECONDS;
EventSource then reconnects). X-Accel-Buffering keeps nginx from buffering it."""
from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app, stream_with_context

from svcommon.auth import require_principal
from svcommon.errors import APIError

from . import access
from . import repository as repo
from .extensions import db
from .present import message, progress

bp = Blueprint("events", __name__, url_prefix="/api/videos")
FINAL = ("ready", "failed")


def _state(v: dict) -> dict:
    return {"status": v["status"], "progress": progress(v), "message": message(v)}


@bp.get("/<video_id>/events")
def events(video_id: str):
    p = require_principal()
    first = _state(access.own_video(db.conn(), video_id, p))
    poll = float(current_app.config["SSE_POLL_SECONDS"])
    limit = float(current_app.config["SSE_MAX_SECONDS"])

    def stream():
        state, started, last_sent = first, time.monotonic(), time.monotonic()
        yield "retry: 2000\n\n"
        yield f"event: status\ndata: {json.dumps(state)}\n\n"
        while state["status"] not in FINAL and time.monotonic() - started < limit:
            time.sleep(poll)
            with db.standalone() as conn:
                row = repo.video(conn, video_id)
            if row is None:
                yield f"event: status\ndata: {json.dumps({'status': 'failed', 'progress': 0, 'message': 'deleted'})}\n\n"
                return
            new = _state(row)
            if new != state:
                state, last_sent = new, time.monotonic()
                yield f"event: status\ndata: {json.dumps(state)}\n\n"
            elif time.monotonic() - last_sent > 15:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})
