"""GET /api/videos/{id}/events: live status as Server-Sent Events ({status, progress,
message}). Polls the database about once a second with a short-lived connection per
poll (an open stream must not pin a pooled connection), sends only changes plus a
keep-alive comment, and ends when the video is ready or failed (or after SSE_MAX_SECONDS;
EventSource then reconnects). X-Accel-Buffering keeps nginx from buffering it.
An open stream holds a worker thread: streams.py caps them per process and per user, and
the keep-alive is frequent so a vanished client's thread is freed within seconds."""
from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app, stream_with_context

from . import access
from . import repository as repo
from .extensions import db
from .present import message, progress
from .streams import Slot

bp = Blueprint("events", __name__, url_prefix="/api/videos")
FINAL = ("ready", "failed")
KEEPALIVE_SECONDS = 5        # a write to a vanished client fails, which frees the thread


def _state(v: dict) -> dict:
    return {"status": v["status"], "progress": progress(v), "message": message(v)}


@bp.get("/<video_id>/events")
def events(video_id: str):
    p = access.active_principal()
    conn = db.conn()
    first = _state(access.own_video(conn, video_id, p))
    poll = float(current_app.config["SSE_POLL_SECONDS"])
    limit = float(current_app.config["SSE_MAX_SECONDS"])
    slot = Slot.take(conn, p.user_id) if first["status"] not in FINAL else None

    def stream():
        state, started, last_sent = first, time.monotonic(), time.monotonic()
        yield "retry: 2000\n\n"
        yield f"event: status\ndata: {json.dumps(state)}\n\n"
        while state["status"] not in FINAL and time.monotonic() - started < limit:
            time.sleep(poll)
            slot.renew()
            with db.standalone() as conn:
                row = repo.video(conn, video_id)
            if row is None:
                yield f"event: status\ndata: {json.dumps({'status': 'failed', 'progress': 0, 'message': 'deleted'})}\n\n"
                return
            new = _state(row)
            if new != state:
                state, last_sent = new, time.monotonic()
                yield f"event: status\ndata: {json.dumps(state)}\n\n"
            elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"

    resp = Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})
    if slot is not None:
        resp.call_on_close(slot.release)   # also when the body is never iterated
    return resp
