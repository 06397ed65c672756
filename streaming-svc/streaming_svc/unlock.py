"""POST /api/videos/{id}/unlock: a correct video password gives this user a 1-hour grant.

Two throttles, both counted *before* the password is checked (the attempt counts as a
failure until it proves right, then it is refunded), so parallel guesses cannot slip past
them and no lock is held during the slow scrypt check:

- per (user, video): UNLOCK_MAX_FAILURES wrong passwords in UNLOCK_WINDOW_SECONDS lock that
  user out of that video for UNLOCK_LOCK_SECONDS (429);
- per video, across every account: a leaky bucket of UNLOCK_VIDEO_BURST wrong passwords
  that drains by one every UNLOCK_VIDEO_REFILL_SECONDS. Once full, every attempt waits
  (429 + Retry-After, at most one refill interval) until a slot frees; it never locks the
  video for a fixed time, so the owner's viewers are slowed, not locked out, and guessing
  is capped at one try per refill interval however many accounts an attacker makes.

While the bucket is full a correct password is refused too: checking it would answer
"right" vs "wrong" and make the limit an oracle that does not slow guessing at all. Viewers
who already hold a grant, the owner and admins never need to unlock and are unaffected.
"""
from __future__ import annotations

import math
from datetime import timedelta

from flask import Blueprint, current_app, request

from svcommon import security_events
from svcommon.errors import APIError
from svcommon.passwords import verify_password
from svcommon.timeutil import count_in_window, seconds_until, utcnow_naive
from svcommon.openapi import SIGNED_IN, responses

from . import access
from . import repository as repo
from .extensions import api, db
from . import schemas as S

bp = Blueprint("unlock", __name__)


def _count_user_attempt(conn, user_id: str, video_id: str, now) -> None:
    cfg = current_app.config
    st = repo.unlock_state(conn, user_id, video_id)   # row lock: one user's guesses queue here
    if st is None:                                      # the video's delete took the row
        raise access.gone_meanwhile()
    if st["locked_until"] and st["locked_until"] > now:
        conn.rollback()
        wait = seconds_until(st["locked_until"], now)
        security_events.record("unlock_throttled", f"video {video_id}", user_id)
        raise APIError(429, "too_many_attempts", f"Too many wrong passwords; try again in {wait} seconds.",
                       {"Retry-After": str(wait)})
    failures, start = count_in_window(st["failures"], st["window_start"], now, int(cfg["UNLOCK_WINDOW_SECONDS"]))
    locked = now + timedelta(seconds=int(cfg["UNLOCK_LOCK_SECONDS"])) \
        if failures >= int(cfg["UNLOCK_MAX_FAILURES"]) else None
    repo.unlock_failed(conn, user_id, video_id, failures, start, locked)


def _count_video_attempt(conn, user_id: str, video_id: str, now) -> None:
    cfg = current_app.config
    burst, refill = int(cfg["UNLOCK_VIDEO_BURST"]), int(cfg["UNLOCK_VIDEO_REFILL_SECONDS"])
    row = repo.video_bucket(conn, video_id)
    if row is None:
        raise access.gone_meanwhile()
    level = max(0.0, row["level"] - max(0.0, (now - row["updated_at"]).total_seconds()) / refill)
    if level + 1 > burst:
        conn.rollback()                   # a refused attempt is no guess: the user's count is undone too
        wait = max(1, math.ceil((level + 1 - burst) * refill))
        security_events.record("unlock_video_throttled", f"video {video_id}: {level:.1f} recent wrong passwords "
                                                f"across accounts (burst {burst})", user_id)
        raise APIError(429, "video_unlock_throttled", "Too many wrong passwords were tried on this video "
                       f"recently; try again in {wait} seconds.", {"Retry-After": str(wait)})
    repo.set_video_bucket(conn, video_id, level + 1, now)


@bp.post("/api/videos/<video_id>/unlock")
@api.validate(json=S.Unlock, resp=responses({"HTTP_204": None}, 400, 401, 403, 404, 429), tags=["library"], security=SIGNED_IN)
def unlock(video_id: str):
    conn = db.conn()
    p = access.active_principal(conn)
    video = access.visible_video(conn, p, video_id)
    if video["visibility"] != "password":
        return "", 204                       # nothing to unlock
    data = request.get_json(silent=True)
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(password, str) or not password or len(password) > 256:
        raise APIError(400, "invalid_input", "send {\"password\": \"...\"}")
    if not repo.ensure_unlock_rows(conn, p.user_id, video_id):
        conn.rollback()
        raise access.gone_meanwhile()
    conn.commit()
    now = utcnow_naive()
    _count_user_attempt(conn, p.user_id, video_id, now)
    _count_video_attempt(conn, p.user_id, video_id, now)
    conn.commit()                            # the attempt is counted before the slow check
    if verify_password(password, video["password_hash"] or ""):
        repo.unlock_clear(conn, p.user_id, video_id)
        repo.refund_video_bucket(conn, video_id)
        repo.grant(conn, p.user_id, video_id, int(current_app.config["UNLOCK_GRANT_SECONDS"]),
                   video["password_hash"])
        conn.commit()
        return "", 204
    security_events.record("bad_video_password", f"video {video_id}", p.user_id)
    raise APIError(403, "wrong_password", "That password is not right.")
