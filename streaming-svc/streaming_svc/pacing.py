"""Pacing and wrapping of segment keys (docs/api.md, "Keys"): the keys of a session's own
variants only, each wrapped under the session's CEK of a key epoch with AAD
``streamvault/segkey/v1:{session_id}:{track}:{index}`` (svcommon.media_crypto), released no
faster than real time allows: per session and track, the media seconds covered by released
keys stay within KEY_BURST_SECONDS + KEY_PACE_FACTOR x seconds since the session started
(migration 026's sv_session_key_release, so it holds across processes and replicas). Used by the key
endpoint (keys.py) and by session open (sessions.py: the first keys come with the session)."""
from __future__ import annotations

import math

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from svcommon import auth, security_events
from svcommon.auth import Principal
from svcommon.db import IntegrityError
from svcommon.dpop import sweep_replay_store
from svcommon.errors import APIError
from svcommon.media_crypto import AUDIO, VIDEO, wrap_segment_key

from . import repository as repo
from .content import Content, session_variants
from .extensions import PACE_EVENT_SECONDS, playback
from .manifest import Media
from .session_crypto import b64url

TRACKS = (VIDEO, AUDIO)


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


def wrapped(sid: str, cek: AESGCM, media: Media, content: Content, track: str, idx: range) -> list[dict]:
    out = []
    for i, variant in zip(idx, session_variants(media, sid, track, idx)):
        key = content.segment_key(track, variant, i)
        nonce, ct = wrap_segment_key(cek, sid, track, i, key)
        out.append({"index": i, "nonce": b64url(nonce), "ciphertext": b64url(ct)})
    return out


def _pace() -> tuple[float, float]:
    cfg = current_app.config
    return float(cfg["KEY_BURST_SECONDS"]), float(cfg["KEY_PACE_FACTOR"])


def charge(conn, sid: str, p: Principal, track: str, seconds: float) -> dict | None:
    """Record the request's DPoP proof and charge ``seconds`` of the track's budget if the
    session is the caller's and open for playback (one round trip, committed): the session's
    row with ``charged`` (repo.release_keys), None for an unknown session. A replayed proof:
    401, nothing charged."""
    burst, factor = _pace()
    proof = auth.claim_proof_record()
    try:
        row = repo.release_keys(conn, proof, sid, p.user_id, p.jkt, track, seconds, burst, factor)
    except IntegrityError:
        conn.rollback()
        raise auth.replay_refused(p.user_id)
    sweep_replay_store(conn, proof)
    return row


def over_budget(row: dict, track: str, seconds: float) -> APIError:
    """The refusal of an uncharged request whose session is the caller's and live: 429 over
    the budget (the proof used up), with the wait until it would fit in Retry-After."""
    burst, factor = _pace()
    sid, left = row["id"], burst + factor * float(row["elapsed"]) - float(row[f"{track}_key_seconds"])
    if seconds <= left:     # not the budget: the session expired between our clock and MariaDB's
        return APIError(410, "session_expired", "This playback session expired; start playback again.")
    retry = max(1, math.ceil((seconds - left) / factor))
    recorded = playback().pace_refusals
    if recorded.get((sid, track)) is None:
        recorded.put((sid, track), True)
        security_events.record("key_pace_exceeded", f"session {sid} asked for {seconds:.1f} s of {track} keys, "
                                                    f"budget {max(0.0, left):.1f} s (further refusals within "
                                                    f"{PACE_EVENT_SECONDS:g} s are not recorded)", row["user_id"])
    return APIError(429, "key_pace_exceeded", f"Keys are released at most at {factor:g}x real time after a "
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
            out[track], charged[track] = wrapped(sid, cek, media, content, track, idx), seconds
    return out, charged
