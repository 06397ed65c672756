"""The key endpoint: segment keys for one playback session (docs/api.md, "Keys"), paced and
wrapped by pacing.py.

A key request costs: the DPoP checks; the session lookup, which is ONE MariaDB round trip
unless this process looked the session up within SESSION_CACHE_SECONDS (1 s; a player asks
for 16 keys, 32 s of media, about every 30 s per track, so for players it is usually a round trip); the video's
metadata and opened content keys from memory (live.media_of, content.py); ONE round trip for
the release (migration 012's sv_key_release: the DPoP proof's jti recorded and the budget
charged in one committed transaction; a replayed proof fails there, in whatever process or
replica it was first used); and an AES-GCM wrap per key. So two round trips per request as
players send them, one for back-to-back requests (bench/results/delivery.md, P5)."""
from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from svcommon import auth, security_events
from svcommon.errors import APIError
from svcommon.openapi import DEVICE_BOUND, responses, validate_as

from . import access
from .content import content_of
from .live import cached_live, check_live, choose_epoch, media_of
from .extensions import api, db
from .pacing import indices, paced, wrapped
from . import schemas as S

bp = Blueprint("keys", __name__, url_prefix="/api/stream/sessions")


@bp.post("/<sid>/keys")
@api.validate(json=S.KeyRequest, skip_validation=True, resp=responses({"HTTP_200": S.KeyBatch}, 400, 401, 403, 404, 409, 410, 429), tags=["playback"], security=DEVICE_BOUND)
def session_keys(sid: str):
    # (KeyRequest documents the body; the view checks it after deferring the DPoP proof's record)
    started = time.perf_counter()
    auth.defer_proof_record()          # recorded with the pace charge below: one round trip
    p = access.device_principal(account_checked_by_session=True)     # check_live below
    authed = time.perf_counter()
    ask = validate_as(S.KeyRequest, request.get_json(silent=True), not_an_object="invalid_input")
    track, start, count, asked = ask.track, ask.from_, ask.count, ask.key_epoch
    live = cached_live(sid)
    if live is None or live.session["user_id"] != p.user_id:
        raise APIError(404, "not_found", "no such playback session")
    if live.session["jkt"] != p.jkt:
        security_events.record("session_device_mismatch", f"session {sid} keys asked from another device key",
                               p.user_id)
        raise APIError(403, "wrong_device", "This playback session belongs to another device.")
    check_live(live)
    if live.session["purpose"] == "download":
        raise APIError(403, "download_session", "This session was opened to download the video, not to play it; "
                                                "open a playback session to watch.")
    conn = db.conn()
    media = media_of(conn, live.session["video_id"])
    content = content_of(conn, media)
    idx, seconds = indices(media, track, start, count)
    looked_up = time.perf_counter()
    paced(conn, sid, p.user_id, track, seconds)     # committed
    charged = time.perf_counter()
    epoch, cek = choose_epoch(live, asked)
    resp = jsonify(track=track, key_epoch=epoch, keys=wrapped(sid, cek, content, track, idx))
    done = time.perf_counter()
    # Server-Timing for the key benchmark (P5): the whole view (DPoP checks included), and its parts.
    resp.headers["Server-Timing"] = ", ".join(f"{name};dur={ms * 1000:.3f}" for name, ms in (
        ("app", done - started), ("auth", authed - started), ("session", looked_up - authed),
        ("pace", charged - looked_up), ("wrap", done - charged)))
    return resp
