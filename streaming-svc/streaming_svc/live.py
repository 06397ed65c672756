"""A playback session as manifest, init and key requests see it: looked up with its access
facts and opened CEKs, cached per process for SESSION_CACHE_SECONDS (heartbeats and ends
drop it at once in their own process), and checked for liveness on every use. Also the
processed media's metadata, cached per video."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from svcommon import codeword, security_events
from svcommon.errors import APIError
from svcommon.timeutil import utcnow_naive

from . import access
from . import repository as repo
from .extensions import db, playback
from .manifest import Media
from .session_crypto import MasterKey


def base_url(sid: str) -> str:
    return f"/api/stream/m/{sid}/{playback().master.media_token(sid)}/"


# A ladder whose higher rungs are still encoding (or whose higher-rung chunk died: then until an
# admin retries it), or a video with no storyboard yet (made after the ladder, or never: one
# processed before storyboards), is re-read this often, so a rung or a storyboard that joins
# shows within seconds, while key, manifest and init requests do not fetch and parse the whole
# metadata each time.
GROWING_LADDER_SECONDS = 5.0


def media_of(conn, video_id: str) -> Media:
    cache = playback().media
    media = cache.get(video_id)
    if media is None:
        row = repo.media_of(conn, video_id)
        if row is None:
            raise APIError(409, "not_ready", "This video has no playable media yet.")
        media = Media.from_row(video_id, row)
        final = media.ladder_complete and media.storyboard is not None
        cache.put(video_id, media, None if final else GROWING_LADDER_SECONDS)
    return media


def media_or_none(conn, video_id: str) -> Media | None:
    """The video's media, None without any (a QoE report still counts time, a watch page
    shows no duration, a heartbeat lists no renditions)."""
    try:
        return media_of(conn, video_id)
    except APIError:
        return None


def media_duration(conn, video_id: str) -> float | None:
    media = media_or_none(conn, video_id)
    return media.duration if media else None


@dataclass
class Live:
    session: dict
    video_status: str
    ceks: dict[int, AESGCM]           # epoch -> content key (current, and the previous one)
    prev_valid_until: datetime | None

    @property
    def epoch(self) -> int:
        return self.session["key_epoch"]

    @cached_property
    def tag_box(self) -> bytes:
        """The metadata watermark appended to init segments (made when an init segment first
        asks: a key request, which rebuilds its Live every time, never needs it)."""
        return codeword.build_tag_box(current_app.config["WATERMARK_SECRET"], self.session["id"],
                                      self.session["tag_issued_at"])


def live_from_row(sid: str, s: dict) -> Live:
    """A Live from the session's row as repo.session_for_delivery gives it (also the key
    release's answer), kept in this process's session cache: it is as fresh as a lookup."""
    master = playback().master
    epoch = s["key_epoch"]
    ceks = {epoch: _opened_cek(master, s["cek_enc"], sid, epoch)}
    prev_until = None
    if s["prev_cek_enc"] is not None:
        ceks[epoch - 1] = _opened_cek(master, s["prev_cek_enc"], sid, epoch - 1)
        prev_until = s["epoch_started_at"] + timedelta(seconds=int(current_app.config["KEY_GRACE_SECONDS"]))
    live = Live(s, s["video_status"], ceks, prev_until)
    playback().sessions.put(sid, live)
    playback().session_videos.put(sid, s["video_id"])
    return live


@lru_cache(maxsize=20000)
def _opened_cek(master: MasterKey, sealed: bytes, sid: str, epoch: int) -> AESGCM:
    """A session's CEK of one epoch, opened once per process: its sealed value never changes
    (a rotation seals a new epoch's), while a key request rebuilds its Live from the fresh row
    every time. (Opening is an AES-GCM decryption under the master key this process holds
    anyway; the least recently used of 20000 go.)"""
    return AESGCM(master.open(sealed, sid, f"cek:{epoch}"))


def cached_live(sid: str) -> Live | None:
    """The session with its opened keys, at most SESSION_CACHE_SECONDS old (heartbeats and
    ends drop it at once in their own process)."""
    if len(sid) != 32:
        return None
    live = playback().sessions.get(sid)
    if live is None:
        row = repo.session_for_delivery(db.conn(), sid)
        live = None if row is None else live_from_row(sid, row)
    return live


def session_video(sid: str) -> str | None:
    """The video a session plays (never changes: remembered by the process for an hour after
    it was last looked up), or None for an unknown session."""
    if len(sid) != 32:
        return None
    video_id = playback().session_videos.get(sid)
    if video_id is None:
        live = cached_live(sid)
        video_id = None if live is None else live.session["video_id"]
    return video_id


def check_live(live: Live) -> None:
    s, now = live.session, utcnow_naive()
    if live.video_status != "ready":
        raise APIError(410, "video_unavailable", "This video is no longer available.")
    if s["ended_at"] is not None:
        if s["end_reason"] in access.REVOKED:
            raise access.revoked_error(s["end_reason"])
        raise APIError(410, "session_ended", "This playback session has ended.")
    if s["expires_at"] <= now:
        raise APIError(410, "session_expired", "This playback session expired; start playback again.")
    lost = s["lost_reason"]           # at most SESSION_CACHE_SECONDS old here; heartbeats end the session
    if lost:
        raise access.revoked_error(lost)


def live_session(sid: str, token: str) -> Live:
    if len(sid) != 32 or not playback().master.media_token_ok(sid, token):
        security_events.record("bad_media_url", f"session {sid[:40]}")
        raise APIError(404, "not_found", "no such media")
    live = cached_live(sid)
    if live is None:
        raise APIError(404, "not_found", "This playback session does not exist (or its video was deleted).")
    check_live(live)
    return live


def choose_epoch(live: Live, asked: int | None) -> tuple[int, AESGCM]:
    """The epoch the player asks for if it is current, or previous within the grace window
    (a heartbeat's new key may still be on its way to the player); else current."""
    if asked is not None and asked == live.epoch - 1 and asked in live.ceks and live.prev_valid_until \
            and utcnow_naive() < live.prev_valid_until:
        return asked, live.ceks[asked]
    return live.epoch, live.ceks[live.epoch]
