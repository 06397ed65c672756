"""The key endpoint: segment keys for one playback session (docs/api.md, "Keys"), paced and
wrapped by pacing.py.

A key request costs: the DPoP checks (the access token's verification is remembered until it
expires: svcommon.jwks); the session's video (it never changes: remembered per process,
live.session_video) and that video's metadata and opened content keys from memory
(live.media_of, content.py); then ONE MariaDB round trip (migration 026's
sv_session_key_release, answering in one JSON column since 028, read from the tables
rather than a view since 029: the DPoP proof's jti
recorded, the budget charged if the session is the caller's, open and within it, in one
committed transaction, and the session as it is now returned with its access facts, so
nothing is read from a stale cache; its sealed CEK opened once per process, live.py); and
a codeword bit and an AES-GCM wrap per key
(bench/results/delivery-p5.md, P5)."""
from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from svcommon import auth, security_events
from svcommon.errors import APIError
from svcommon.openapi import DEVICE_BOUND, responses, validate_as

from . import access
from .content import content_of
from .live import cached_live, check_live, choose_epoch, live_from_row, media_of, session_video
from .extensions import api, db
from .pacing import charge, indices, over_budget, wrapped
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
    video_id = session_video(sid)
    if video_id is None:
        raise APIError(404, "not_found", "no such playback session")
    conn = db.conn()
    media = _media(conn, sid, video_id)
    content = content_of(conn, media)
    idx, seconds = indices(media, track, start, count)
    looked_up = time.perf_counter()
    row = charge(conn, sid, p, track, seconds)          # committed; the session as it is now
    charged = time.perf_counter()
    if row is None or row["user_id"] != p.user_id:
        raise APIError(404, "not_found", "no such playback session")
    live = live_from_row(sid, row)
    if row["jkt"] != p.jkt:
        security_events.record("session_device_mismatch", f"session {sid} keys asked from another device key",
                               p.user_id)
        raise APIError(403, "wrong_device", "This playback session belongs to another device.")
    check_live(live)
    if row["purpose"] == "download":
        raise APIError(403, "download_session", "This session was opened to download the video, not to play it; "
                                                "open a playback session to watch.")
    if not row["charged"]:
        raise over_budget(row, track, seconds)
    epoch, cek = choose_epoch(live, asked)
    resp = jsonify(track=track, key_epoch=epoch, keys=wrapped(sid, cek, media, content, track, idx))
    done = time.perf_counter()
    # Server-Timing for the key benchmark (P5): the whole view (DPoP checks included), and its parts.
    resp.headers["Server-Timing"] = ", ".join(f"{name};dur={ms * 1000:.3f}" for name, ms in (
        ("app", done - started), ("auth", authed - started), ("media", looked_up - authed),
        ("release", charged - looked_up), ("wrap", done - charged)))
    return resp


def _media(conn, sid: str, video_id: str):
    try:
        return media_of(conn, video_id)
    except APIError:
        # No media: the video is being deleted (its sessions with it), or an admin re-processes
        # it. Answer what the session's own state says (404 gone, 410 ended or unavailable).
        live = cached_live(sid)
        if live is None:
            raise APIError(404, "not_found", "no such playback session")
        check_live(live)
        raise
