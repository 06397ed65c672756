"""Per-session routes under ``/api/stream/m/{session_id}/{token}/…`` (token = keyed MAC of
the session id): the manifests and the init segments. Nothing else of a session's media
passes through here: manifests list the shared ciphertext URLs under ``/media/`` (cdn.py,
served from the gateway's cache) of the variants the session's codeword picks, and the
keys to open them come from keys.py. Init segments are plaintext codec setup (no samples)
with the session's metadata tag appended, so they are per session and never cacheable.
Expired, ended or revoked sessions and videos that are no longer ready answer 410/403.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, Response, current_app

from svcommon import codeword, security_events
from svcommon.errors import APIError
from svcommon.filestore import FileStoreError, NotFound
from svcommon.media_crypto import VIDEO
from svcommon.media_keys import audio_init_key, init_key
from svcommon.timeutil import utcnow_naive

from . import access, manifest
from . import repository as repo
from .content import Content, content_of, session_variant
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


def cached_live(sid: str) -> Live | None:
    """The session with its opened keys, at most SESSION_CACHE_SECONDS old (heartbeats and
    ends drop it at once in their own process)."""
    if len(sid) != 32:
        return None
    cache = playback().sessions
    live = cache.get(sid)
    if live is None:
        live = _load(sid)
        if live is not None:
            cache.put(sid, live)
    return live


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
    lost = access.lost_access(s)       # re-checked at most SESSION_CACHE_SECONDS late; heartbeats end it
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


class SessionUrls:
    """The URLs one session's manifests list: its own init segments, and per index the
    shared ciphertext of the variant its codeword picks."""

    def __init__(self, sid: str, media: Media, content: Content):
        self.base, self.vid, self.content = base_url(sid), media.video_id, content
        self.variants = [session_variant(sid, VIDEO, i) for i in range(media.segment_count)]

    def init(self, rendition: str) -> str:
        return f"{self.base}{rendition}/init.mp4"

    def segment(self, rendition: str, index: int) -> str:
        variant = "-" if rendition == AUDIO else self.variants[index]
        return f"/media/{self.vid}/{rendition}/{self.content.file_name(rendition, variant, index)}"


def _no_store(body, mimetype: str) -> Response:
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-store"})


def _session_media(sid: str, token: str) -> tuple[Live, Media]:
    live = live_session(sid, token)
    return live, media_of(db.conn(), live.session["video_id"])


@bp.get("/<sid>/<token>/manifest.mpd")
def dash(sid: str, token: str):
    _, media = _session_media(sid, token)
    urls = SessionUrls(sid, media, content_of(db.conn(), media))
    return _no_store(manifest.dash_mpd(media, urls.init, urls.segment), "application/dash+xml")


@bp.get("/<sid>/<token>/master.m3u8")
def hls(sid: str, token: str):
    _, media = _session_media(sid, token)
    content_of(db.conn(), media)       # a video not yet converted has no playable URLs: 503
    return _no_store(manifest.hls_master(media), "application/vnd.apple.mpegurl")


@bp.get("/<sid>/<token>/<rendition>/index.m3u8")
def hls_media(sid: str, token: str, rendition: str):
    _, media = _session_media(sid, token)
    if not media.segments_of(rendition):
        raise APIError(404, "not_found", "no such rendition")
    urls = SessionUrls(sid, media, content_of(db.conn(), media))
    return _no_store(manifest.hls_media(media, rendition, urls.init, urls.segment), "application/vnd.apple.mpegurl")


@bp.get("/<sid>/<token>/<rendition>/init.mp4")
def init_segment(sid: str, token: str, rendition: str):
    live, media = _session_media(sid, token)
    if not media.segments_of(rendition):
        raise APIError(404, "not_found", "no such rendition")
    vid = media.video_id
    key = audio_init_key(vid) if rendition == AUDIO else init_key(vid, rendition)
    files = filestore()
    try:
        plain = playback().objects.get_or_load(key, lambda: files.get_bytes(key))
    except NotFound:
        raise APIError(410, "video_unavailable", "This video's media is gone.")
    except FileStoreError as exc:
        raise APIError(503, "storage_unavailable", "Video storage is unavailable; retrying shortly helps.") from exc
    return _no_store(plain + live.tag_box, "video/mp4")
