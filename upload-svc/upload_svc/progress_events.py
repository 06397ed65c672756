"""GET /api/videos/{id}/events: live status as Server-Sent Events (present.live_state:
status, progress, stage message, encode_progress, encoding, thumbnail_url). Polls the
database about once a second with a short-lived connection per poll (an open stream must
not pin a pooled connection), sends only changes plus a keep-alive comment, and ends when
the video failed or is ready with nothing left to encode (a ready video's ladder may still
grow; or after SSE_MAX_SECONDS: EventSource then reconnects). X-Accel-Buffering keeps
nginx from buffering it. An open stream holds a worker thread: streams.py caps them per
process and per user, and the keep-alive is frequent so a vanished client's thread is
freed within seconds."""
from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app, stream_with_context

from svcommon.openapi import SIGNED_IN, responses

from . import access
from . import repository as repo
from .extensions import api, db
from .present import live_state
from . import schemas as S
from .streams import Slot

bp = Blueprint("events", __name__, url_prefix="/api/videos")
GONE = {"status": "failed", "progress": 0, "message": "deleted", "encoding": False, "encode_progress": 0,
        "thumbnail_url": None}
KEEPALIVE_SECONDS = 5        # a write to a vanished client fails, which frees the thread


def _final(state: dict) -> bool:
    return state["status"] == "failed" or (state["status"] == "ready" and not state["encoding"])


@bp.get("/<video_id>/events")
@api.validate(resp=responses(None, 401, 403, 404, 429, media={200: "text/event-stream"}, event_data=S.LiveState), tags=["videos"], security=SIGNED_IN)
def events(video_id: str):
    p = access.active_principal("read")
    conn = db.conn()
    first = live_state(access.own_video(conn, video_id, p))
    poll = float(current_app.config["SSE_POLL_SECONDS"])
    limit = float(current_app.config["SSE_MAX_SECONDS"])
    slot = Slot.take(conn, p.user_id) if not _final(first) else None

    def stream():
        state, started, last_sent = first, time.monotonic(), time.monotonic()
        yield "retry: 2000\n\n"
        yield f"event: status\ndata: {json.dumps(state)}\n\n"
        while not _final(state) and time.monotonic() - started < limit:
            time.sleep(poll)
            slot.renew()
            with db.standalone() as conn:
                row = repo.video(conn, video_id)
            if row is None:
                yield f"event: status\ndata: {json.dumps(GONE)}\n\n"
                return
            new = live_state(row)
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
