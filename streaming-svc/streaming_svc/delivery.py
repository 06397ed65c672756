"""Per-session routes under ``/api/stream/m/{session_id}/{token}/…`` (token = keyed MAC of
the session id): the manifests, the init segments, the caption tracks and the storyboard
(seek-preview sprites and their WebVTT track). Nothing else of a session's media passes
through here: manifests list the shared ciphertext URLs under ``/media/`` (cdn.py, served
from the gateway's cache) of the variants the session's codeword picks, and the keys to open
them come from keys.py. Init segments are plaintext codec setup (no samples) with the
session's metadata tag appended, so they are per session and never cacheable; caption files
are plain WebVTT served only here, so a caption of a private or password video reaches no
one without a live session of it.
Expired, ended or revoked sessions and videos that are no longer ready answer 410/403.
Every answer under /api/stream/ is ``no-store`` (create_app's after_request hook), but for
the storyboard's: they show the picture, so they are served here, to live sessions with
access, never under the public /media/; ``private`` lets the viewer's own browser keep them
while it hovers the seek bar, and no shared cache may.
"""
from __future__ import annotations

from flask import Blueprint, Response

from svcommon.errors import APIError
from svcommon.filestore import FileStoreError, NotFound
from svcommon.media_crypto import AUDIO_VARIANT, VIDEO
from svcommon.media_keys import audio_init_key, init_key
from svcommon.storyboards import VTT_NAME, sprite_name, storyboard_key
from svcommon.openapi import PUBLIC, responses

from . import manifest
from . import repository as repo
from .content import Content, content_of, session_variants
from .extensions import api, db, filestore, playback
from .live import Live, base_url, live_session, media_of
from .manifest import AUDIO, Media

STORYBOARD_CACHE = "private, max-age=600"

bp = Blueprint("delivery", __name__, url_prefix="/api/stream/m")


class SessionUrls:
    """The URLs one session's manifests list: its own init segments, and per index the
    shared ciphertext of the variant its codeword picks."""

    def __init__(self, sid: str, media: Media, content: Content):
        self.base, self.vid, self.content = base_url(sid), media.video_id, content
        self.variants = session_variants(media, sid, VIDEO, range(media.segment_count))

    def init(self, rendition: str) -> str:
        return f"{self.base}{rendition}/init.mp4"

    def caption(self, caption_id: str) -> str:
        return f"{self.base}captions/{caption_id}.vtt"

    def segments(self, rendition: str, count: int) -> list[str]:
        """The URLs of indices 0..count-1: per index the variant's keyed name (derived once per
        process and video, Content.file_names), chosen by the session's codeword."""
        prefix = f"/media/{self.vid}/{rendition}/"
        if rendition == AUDIO:
            return [prefix + name for name in self.content.file_names(rendition, AUDIO_VARIANT, count)]
        names = {v: self.content.file_names(rendition, v, count) for v in ("a", "b")}
        return [prefix + names[v][i] for i, v in zip(range(count), self.variants)]


def _session_media(sid: str, token: str) -> tuple[Live, Media]:
    live = live_session(sid, token)
    return live, media_of(db.conn(), live.session["video_id"])


@bp.get("/<sid>/<token>/manifest.mpd")
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "application/dash+xml"}), tags=["delivery"], security=PUBLIC)
def dash(sid: str, token: str):
    _, media = _session_media(sid, token)
    conn = db.conn()
    urls = SessionUrls(sid, media, content_of(conn, media))
    captions = [manifest.Caption(c["lang"], c["label"], urls.caption(c["id"]))
                for c in repo.captions_of(conn, media.video_id)]
    return Response(manifest.dash_mpd(media, urls.init, urls.segments, captions), mimetype="application/dash+xml")


@bp.get("/<sid>/<token>/captions/<caption_id>.vtt")
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "text/vtt"}), tags=["delivery"], security=PUBLIC)
def caption(sid: str, token: str, caption_id: str):
    """A caption track of the session's video: plain WebVTT (text, not worth the segment
    encryption), behind the same media token and liveness checks as the manifest."""
    live = live_session(sid, token)
    key = repo.caption_key(db.conn(), live.session["video_id"], caption_id) if len(caption_id) == 32 else None
    if key is None:
        raise APIError(404, "not_found", "no such caption track")
    return Response(_stored(key), mimetype="text/vtt")


@bp.get("/<sid>/<token>/master.m3u8")
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "application/vnd.apple.mpegurl"}), tags=["delivery"], security=PUBLIC)
def hls(sid: str, token: str):
    _, media = _session_media(sid, token)
    content_of(db.conn(), media)       # a video not yet converted has no playable URLs: 503
    return Response(manifest.hls_master(media), mimetype="application/vnd.apple.mpegurl")


@bp.get("/<sid>/<token>/<rendition>/index.m3u8")
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "application/vnd.apple.mpegurl"}), tags=["delivery"], security=PUBLIC)
def hls_media(sid: str, token: str, rendition: str):
    _, media = _session_media(sid, token)
    if not media.segments_of(rendition):
        raise APIError(404, "not_found", "no such rendition")
    urls = SessionUrls(sid, media, content_of(db.conn(), media))
    return Response(manifest.hls_media(media, rendition, urls.init, urls.segments),
                    mimetype="application/vnd.apple.mpegurl")


@bp.get("/<sid>/<token>/<rendition>/init.mp4")
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "video/mp4"}), tags=["delivery"], security=PUBLIC)
def init_segment(sid: str, token: str, rendition: str):
    live, media = _session_media(sid, token)
    if not media.segments_of(rendition):
        raise APIError(404, "not_found", "no such rendition")
    return Response(plain_init(media.video_id, rendition) + live.tag_box, mimetype="video/mp4")


def plain_init(video_id: str, rendition: str) -> bytes:
    """A rendition's stored init segment (no tag), kept in the per-process LRU."""
    return _stored(audio_init_key(video_id) if rendition == AUDIO else init_key(video_id, rendition))


@bp.get("/<sid>/<token>/storyboard/<int:number>.jpg")
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "image/jpeg"}), tags=["delivery"], security=PUBLIC)
def storyboard_sprite(sid: str, token: str, number: int):
    _, media = _session_media(sid, token)
    board = media.storyboard
    if board is None or not 1 <= number <= board.sprites:
        raise APIError(404, "not_found", "no such storyboard sprite")
    body = _stored(storyboard_key(media.video_id, sprite_name(number)), board.version)
    return Response(body, mimetype="image/jpeg", headers={"Cache-Control": STORYBOARD_CACHE})


@bp.get("/<sid>/<token>/storyboard/" + VTT_NAME)
@api.validate(resp=responses(None, 401, 403, 404, 410, 503, media={200: "text/vtt"}), tags=["delivery"], security=PUBLIC)
def storyboard_track(sid: str, token: str):
    _, media = _session_media(sid, token)
    if media.storyboard is None:
        raise APIError(404, "not_found", "this video has no storyboard")
    body = _stored(storyboard_key(media.video_id, VTT_NAME), media.storyboard.version)
    return Response(body, mimetype="text/vtt", headers={"Cache-Control": STORYBOARD_CACHE})


def _stored(key: str, version: str = "") -> bytes:
    """A small object every session of a video reads (init segment, caption file, storyboard),
    from the per-process LRU (``version``: a re-made storyboard's objects reuse their names)."""
    files = filestore()
    try:
        return playback().objects.get_or_load((key, version), lambda: files.get_bytes(key))
    except NotFound:
        raise APIError(410, "video_unavailable", "This video's media is gone.")
    except FileStoreError as exc:
        raise APIError(503, "storage_unavailable", "Video storage is unavailable; retrying shortly helps.") from exc
