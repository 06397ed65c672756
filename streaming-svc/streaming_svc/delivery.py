"""Per-session media delivery: manifests and encrypted segments under
``/api/stream/m/{session_id}/{token}/…`` (token = keyed MAC of the session id).

A segment request costs: one cached session lookup (≤ SESSION_CACHE_SECONDS old), the
plaintext from the in-memory LRU (file-svc on a miss), the variant chosen by the
session's codeword bit (svcommon.codeword), one AES-256-GCM encryption. Media URLs are
capabilities for one live session, not credentials: what they return is ciphertext only
the device that did the key exchange can open. Expired, ended or revoked sessions and
videos that are no longer ready answer 410.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, Response, current_app, request

from svcommon import codeword, security_events
from svcommon.errors import APIError
from svcommon.filestore import FileStoreError, NotFound
from svcommon.params import ascii_uint
from svcommon.media_keys import audio_init_key, audio_segment_key, init_key, segment_key
from svcommon.timeutil import utcnow_naive

from . import access, manifest, session_crypto
from . import repository as repo
from .extensions import db, filestore, playback
from .manifest import AUDIO, Media

bp = Blueprint("delivery", __name__, url_prefix="/api/stream/m")


def base_url(sid: str) -> str:
    return f"/api/stream/m/{sid}/{playback().master.media_token(sid)}/"


def media_of(conn, video_id: str) -> Media:
    cache = playback().media
    media = cache.get(video_id)
    if media is None:
        row = repo.media_of(conn, video_id)
        if row is None:
            raise APIError(409, "not_ready", "This video has no playable media yet.")
        media = Media.from_row(video_id, row)
        cache.put(video_id, media)
    return media


@dataclass
class Live:
    session: dict
    video_status: str
    ceks: dict[int, AESGCM]           # epoch -> content key (current, and the previous one)
    prev_valid_until: datetime | None
    tag_box: bytes                    # the metadata watermark appended to init segments

    @property
    def epoch(self) -> int:
        return self.session["key_epoch"]


def _load(sid: str) -> Live | None:
    s = repo.session_for_delivery(db.conn(), sid)
    if s is None:
        return None
    master = playback().master
    epoch = s["key_epoch"]
    ceks = {epoch: AESGCM(master.open(s["cek_enc"], sid, f"cek:{epoch}"))}
    prev_until = None
    if s["prev_cek_enc"] is not None:
        ceks[epoch - 1] = AESGCM(master.open(s["prev_cek_enc"], sid, f"cek:{epoch - 1}"))
        prev_until = s["epoch_started_at"] + timedelta(seconds=int(current_app.config["KEY_GRACE_SECONDS"]))
    tag = codeword.build_tag_box(current_app.config["WATERMARK_SECRET"], sid, s["tag_issued_at"])
    return Live(s, s["video_status"], ceks, prev_until, tag)


def live_session(sid: str, token: str) -> Live:
    if len(sid) != 32 or not playback().master.media_token_ok(sid, token):
        security_events.record("bad_media_url", f"session {sid[:40]}")
        raise APIError(404, "not_found", "no such media")
    cache = playback().sessions
    live = cache.get(sid)
    if live is None:
        live = _load(sid)
        if live is None:
            raise APIError(404, "not_found", "This playback session does not exist (or its video was deleted).")
        cache.put(sid, live)
    s, now = live.session, utcnow_naive()
    if live.video_status != "ready":
        raise APIError(410, "video_unavailable", "This video is no longer available.")
    if s["ended_at"] is not None:
        if s["end_reason"] in access.REVOKED:
            raise access.revoked_error(s["end_reason"])
        raise APIError(410, "session_ended", "This playback session has ended.")
    if s["expires_at"] <= now:
        raise APIError(410, "session_expired", "This playback session expired; start playback again.")
    lost = access.lost_access(s)       # re-checked at most SESSION_CACHE_SECONDS late; heartbeats end it
    if lost:
        raise access.revoked_error(lost)
    return live


def choose_epoch(live: Live, asked: str | None) -> tuple[int, AESGCM]:
    """Serve the epoch the player asks for if it is current, or previous within the grace
    window (a heartbeat's new key may still be on its way to the player); else current."""
    e = ascii_uint(asked)   # "²".isdigit() is true but int("²") raises: ASCII digits only
    if e is not None:
        if e == live.epoch - 1 and e in live.ceks and live.prev_valid_until and utcnow_naive() < live.prev_valid_until:
            return e, live.ceks[e]
    return live.epoch, live.ceks[live.epoch]


def _no_store(body, mimetype: str, headers: dict | None = None) -> Response:
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-store", **(headers or {})})


@bp.get("/<sid>/<token>/manifest.mpd")
def dash(sid: str, token: str):
    live = live_session(sid, token)
    return _no_store(manifest.dash_mpd(media_of(db.conn(), live.session["video_id"])), "application/dash+xml")


@bp.get("/<sid>/<token>/master.m3u8")
def hls(sid: str, token: str):
    live = live_session(sid, token)
    return _no_store(manifest.hls_master(media_of(db.conn(), live.session["video_id"])),
                     "application/vnd.apple.mpegurl")


def _object_key(media: Media, sid: str, rendition: str, index) -> str:
    vid = media.video_id
    if rendition == AUDIO:
        return audio_init_key(vid) if index == "init" else audio_segment_key(vid, index)
    if index == "init":
        return init_key(vid, rendition)
    return segment_key(vid, rendition, codeword.variant(current_app.config["WATERMARK_SECRET"], sid, index), index)


@bp.get("/<sid>/<token>/<rendition>/<name>")
def segment(sid: str, token: str, rendition: str, name: str):
    started = time.perf_counter()
    live = live_session(sid, token)
    media = media_of(db.conn(), live.session["video_id"])
    count = media.segments_of(rendition)
    if name == "index.m3u8" and count:
        return _no_store(manifest.hls_media(media, rendition), "application/vnd.apple.mpegurl")
    if name == "init.mp4":
        index = "init"
    elif len(name) == 9 and name.endswith(".m4s"):
        index = ascii_uint(name[:5])
    else:
        index = None
    if not count or index is None or (index != "init" and index >= count):
        raise APIError(404, "not_found", "no such segment")
    key = _object_key(media, sid, rendition, index)
    files = filestore()
    try:
        plain = playback().segments.get_or_load(key, lambda: files.get_bytes(key))
    except NotFound:
        raise APIError(410, "video_unavailable", "This video's media is gone.")
    except FileStoreError as exc:
        raise APIError(503, "storage_unavailable", "Video storage is unavailable; retrying shortly helps.") from exc
    if index == "init":
        plain = plain + live.tag_box
    epoch, cek = choose_epoch(live, request.headers.get("X-Key-Epoch"))
    enc_started = time.perf_counter()
    body = session_crypto.encrypt_segment(cek, sid, rendition, index, plain)
    done = time.perf_counter()
    # Server-Timing lets benchmarks split our own overhead from the encryption (P5).
    timing = f"app;dur={(enc_started - started) * 1000:.3f}, enc;dur={(done - enc_started) * 1000:.3f}"
    return _no_store(body, "application/octet-stream", {"X-Key-Epoch": str(epoch), "Server-Timing": timing})
