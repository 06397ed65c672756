"""Segment keys for one playback session (docs/api.md, "Keys"): the keys of the session's
own variants only, each wrapped under the session's CEK of a key epoch with AAD
``streamvault/segkey/v1:{session_id}:{track}:{index}`` (svcommon.media_crypto), released
no faster than real time allows: per session and track, the media seconds covered by
released keys stay within KEY_BURST_SECONDS + KEY_PACE_FACTOR x seconds since the session
started (one conditional UPDATE in MariaDB, so it holds across processes and replicas).

A key request costs: the DPoP checks, one cached session lookup, the opened content keys
of the video from memory (content.py), ONE round trip to MariaDB (migration 012's
sv_key_release: the DPoP proof's jti recorded and the budget charged in one committed
transaction; a replayed proof fails there, in whatever process or replica it was first
used) and an AES-GCM wrap per key."""
from __future__ import annotations

import math
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, current_app, jsonify

from svcommon import auth, security_events
from svcommon.db import IntegrityError
from svcommon.dpop import sweep_replay_store
from svcommon.errors import APIError
from svcommon.media_crypto import AUDIO, VIDEO, wrap_segment_key
from svcommon.params import json_body

from . import access
from . import repository as repo
from .content import Content, content_of, session_variant
from .live import cached_live, check_live, choose_epoch, media_of
from .extensions import db
from .manifest import Media
from .session_crypto import b64url

bp = Blueprint("keys", __name__, url_prefix="/api/stream/sessions")
TRACKS = (VIDEO, AUDIO)


def _int(data: dict, name: str, low: int, high: int | None = None, required: bool = True) -> int | None:
    if name not in data and not required:
        return None
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise APIError(400, "invalid_input", f"{name} must be an integer {bound}")
    return value


def indices(media: Media, track: str, start: int, count: int) -> tuple[range, float]:
    """The indices asked for, clipped at the end, and the media seconds they cover."""
    if track == AUDIO:
        durations = media.audio["segment_durations"] if media.audio else []
    else:
        durations = media.segment_durations
    if start >= len(durations):
        raise APIError(416, "range_not_satisfiable", f"{track} has {len(durations)} segments; from must be below that")
    idx = range(start, min(len(durations), start + count))
    return idx, sum(durations[i] for i in idx)


def wrapped(sid: str, cek: AESGCM, content: Content, track: str, idx: range) -> list[dict]:
    out = []
    for i in idx:
        key = content.segment_key(track, session_variant(sid, track, i), i)
        nonce, ct = wrap_segment_key(cek, sid, track, i, key)
        out.append({"index": i, "nonce": b64url(nonce), "ciphertext": b64url(ct)})
    return out


def _pace() -> tuple[float, float]:
    cfg = current_app.config
    return float(cfg["KEY_BURST_SECONDS"]), float(cfg["KEY_PACE_FACTOR"])


def paced(conn, sid: str, user_id: str, track: str, seconds: float) -> None:
    """Record the request's DPoP proof and charge ``seconds`` of the track's budget (one
    round trip, committed), or refuse: 401 for a replayed proof, 429 over the budget
    (nothing charged, the proof used up)."""
    burst, factor = _pace()
    proof = auth.claim_proof_record()
    try:
        charged = repo.release_key_seconds(conn, proof, sid, track, seconds, burst, factor)
    except IntegrityError:
        conn.rollback()
        raise auth.replay_refused(user_id)
    sweep_replay_store(conn, proof)
    if charged:
        return
    row = repo.key_budget(conn, sid, track)
    conn.rollback()
    if row is None:             # deleted with its video since the (cached) lookup
        raise APIError(410, "video_unavailable", "This video is no longer available.")
    left = burst + factor * float(row["elapsed"]) - float(row["used"])
    retry = max(1, math.ceil((seconds - left) / factor))
    security_events.record("key_pace_exceeded", f"session {sid} asked for {seconds:.1f} s of {track} keys, "
                                                f"budget {max(0.0, left):.1f} s", user_id)
    raise APIError(429, "key_pace_exceeded", f"Keys are released at most at {factor:g}x real time after a "
                                             f"{burst:g} s burst; retry in {retry} s.", {"Retry-After": str(retry)})


def first_keys(sid: str, cek: AESGCM, media: Media, content: Content) -> tuple[dict, dict[str, float]]:
    """The keys of the first FIRST_KEYS_COUNT segments of each track for the session-open
    response, and the key-seconds they cost per track: the new session's row starts with
    them charged (at 0 s elapsed the budget is the burst, so no UPDATE is needed)."""
    count = int(current_app.config["FIRST_KEYS_COUNT"])
    burst, _ = _pace()
    out: dict = {"key_epoch": 0}
    charged = {track: 0.0 for track in TRACKS}
    for track in TRACKS:
        out[track] = []
        if track == AUDIO and not media.audio:
            continue
        idx, seconds = indices(media, track, 0, count)
        if seconds <= burst:    # a burst below FIRST_KEYS_COUNT segments: the player asks instead
            out[track], charged[track] = wrapped(sid, cek, content, track, idx), seconds
    return out, charged


@bp.post("/<sid>/keys")
def session_keys(sid: str):
    started = time.perf_counter()
    auth.defer_proof_record()          # recorded with the pace charge below: one round trip
    p = access.device_principal(account_checked_by_session=True)     # check_live below
    authed = time.perf_counter()
    data = json_body("invalid_input")
    track = data.get("track")
    if track not in TRACKS:
        raise APIError(400, "invalid_input", 'track must be "video" or "audio"')
    start = _int(data, "from", 0)
    count = _int(data, "count", 1, int(current_app.config["KEYS_MAX_PER_REQUEST"]))
    asked = _int(data, "key_epoch", 0, required=False)
    live = cached_live(sid)
    if live is None or live.session["user_id"] != p.user_id:
        raise APIError(404, "not_found", "no such playback session")
    if live.session["jkt"] != p.jkt:
        security_events.record("session_device_mismatch", f"session {sid} keys asked from another device key",
                               p.user_id)
        raise APIError(403, "wrong_device", "This playback session belongs to another device.")
    check_live(live)
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
