"""Forensically watermarked downloads (docs/api.md "Downloads"): a viewer downloads the video
*of one of their own playback sessions*, so the file carries what a leaked stream of that
session would: per segment index the A/B variant its codeword picks, and its MAC'd
metadata tag after the ``moov``. A shared download traces back to the session, its user
and device (watermark-svc forensics), like a recorded stream.

Two steps, because a browser cannot put DPoP headers on a plain download:
1. ``POST /api/stream/sessions/{sid}/download`` (DPoP, the session's own device; the owner
   allows downloads of the video; the viewer may still watch it) issues the session's one
   ticket, short-lived and single-use, kept only as its SHA-256; per user at most
   DOWNLOADS_PER_HOUR. One ticket per session bounds what the download adds to key-release
   pacing: a whole video per session opened, and sessions are capped (stream limit, hourly).
2. ``GET /api/stream/download/{sid}/{ticket}`` uses the ticket up (in the database, so once
   across replicas) and streams a fragmented MP4 (mp4mux.py): the session's init with its
   tag, then each segment decrypted here, fetched one at a time (no temp file, one segment
   in memory). A security event records both steps with session, device and user.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify

from svcommon import security_events
from svcommon.errors import APIError
from svcommon.filestore import FileStore, FileStoreError
from svcommon.media_crypto import AUDIO, AUDIO_VARIANT, VIDEO, decrypt_segment
from svcommon.media_keys import encrypted_segment_key
from svcommon.timeutil import iso, utcnow_naive
from svcommon.web import attachment
from svcommon.openapi import DEVICE_BOUND, PUBLIC, responses, validated_json

from . import access, mp4mux
from . import repository as repo
from .content import Content, content_of, session_variants
from .delivery import plain_init
from .extensions import api, db, filestore, playback
from .live import cached_live, check_live, media_of
from .sessions import ensure_live, owned_session
from . import schemas as S

log = logging.getLogger("streaming_svc.downloads")
bp = Blueprint("downloads", __name__, url_prefix="/api/stream")


def _ticket_hash(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


def _rendition(media, asked) -> str:
    """The asked rung, or the best one (renditions are listed largest first)."""
    if asked is None:
        return next(iter(media.renditions))
    if asked not in media.renditions:
        raise APIError(400, "invalid_input", f"rendition must be one of: {', '.join(media.renditions)}")
    return asked


def _allowed(video: dict | None) -> None:
    if video is None or not video["downloads_allowed"]:
        raise APIError(403, "downloads_not_allowed", "The owner of this video does not allow downloads.")


@bp.post("/sessions/<sid>/download")
@api.validate(json=S.DownloadRequest, resp=responses({"HTTP_201": S.DownloadTicket}, 400, 401, 403, 404, 409, 410, 429), tags=["playback"], security=DEVICE_BOUND)
def issue(sid: str):
    p = access.device_principal()
    asked: S.DownloadRequest = validated_json()
    conn, cfg, now = db.conn(), current_app.config, utcnow_naive()
    repo.lock_user(conn, p.user_id)              # the hourly count below holds across concurrent requests
    s = owned_session(conn, p, sid, for_update=True)
    if s["user_id"] != p.user_id:                 # an admin too: a download carries its own session's tag
        raise APIError(404, "not_found", "no such playback session")
    ensure_live(s, now)
    facts = repo.session_access(conn, sid)
    if facts is None or facts["video_status"] != "ready":
        raise APIError(410, "video_unavailable", "This video is no longer available.")
    lost = facts["lost_reason"]
    if lost:
        raise access.revoked_error(lost)
    _allowed(repo.video_by_id(conn, s["video_id"]))
    media = media_of(conn, s["video_id"])
    content_of(conn, media)                       # 503 media_converting for a video not yet converted
    rendition = _rendition(media, asked.rendition)
    window = timedelta(hours=1)
    issued, oldest = repo.downloads_since(conn, p.user_id, now - window)
    limit = int(cfg["DOWNLOADS_PER_HOUR"])
    if issued >= limit:
        retry = max(1, int((oldest + window - now).total_seconds()) + 1)
        security_events.record("download_limit", f"{issued} downloads in the last hour (limit {limit}), "
                                                 f"session {sid}", p.user_id)
        raise APIError(429, "download_limit", f"You have downloaded {issued} videos in the last hour (the limit); "
                                              f"try again in {-(-retry // 60)} minutes.", {"Retry-After": str(retry)})
    ticket = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=int(cfg["DOWNLOAD_TICKET_SECONDS"]))
    if not repo.issue_download(conn, sid, _ticket_hash(ticket), rendition, now, expires):
        raise APIError(409, "already_downloaded", "This playback session was already downloaded; each session "
                                                  "may be downloaded once. Start a new one to download again.")
    conn.commit()
    security_events.record("download_issued", f"session {sid} of video {s['video_id']}, device {p.device_id}, "
                                              f"{rendition}", p.user_id)
    return jsonify(download_url=f"/api/stream/download/{sid}/{ticket}", expires_at=iso(expires, millis=True),
                   rendition=rendition), 201


@bp.get("/download/<sid>/<token>")
@api.validate(resp=responses(None, 403, 404, 409, 410, 429, 503, media={200: "video/mp4"}), tags=["playback"], security=PUBLIC)
def download(sid: str, token: str):
    """``token``: the ticket (named so for the log redaction of secrets in paths)."""
    conn, now = db.conn(), utcnow_naive()
    row = repo.download_ticket(conn, sid) if len(sid) == 32 and len(token) <= 64 else None
    if row is None or row["download_ticket_sha256"] is None \
            or not hmac.compare_digest(bytes(row["download_ticket_sha256"]), _ticket_hash(token)):
        security_events.record("bad_download_ticket", f"session {sid[:40]}")
        raise APIError(404, "not_found", "no such download")
    if row["download_used_at"] is not None:
        raise APIError(410, "ticket_used", "This download link was already used; ask for a new download.")
    if row["download_expires_at"] <= now:
        raise APIError(410, "ticket_expired", "This download link expired; ask for a new download.")
    _allowed(row)
    live = cached_live(sid)
    if live is None:
        raise APIError(404, "not_found", "no such download")
    check_live(live)                               # ended, expired or access lost since the ticket: refused
    slots = playback().download_slots
    if not slots.acquire(blocking=False):
        raise APIError(429, "downloads_busy", "Too many downloads are running on this server; retry shortly.",
                       {"Retry-After": "10"})
    try:
        media = media_of(conn, row["video_id"])
        content = content_of(conn, media)
        rendition = row["download_rendition"]
        if rendition not in media.renditions:
            raise APIError(410, "video_unavailable", "This rendition is no longer available.")
        audio = media.segments_of(AUDIO) > 0
        header = mp4mux.merged_header(plain_init(media.video_id, rendition),
                                      plain_init(media.video_id, AUDIO) if audio else None) + live.tag_box
        # Used up only now: a refusal above (storage down, say) leaves the ticket for a retry.
        if not repo.claim_download(conn, sid, _ticket_hash(token), now):
            raise APIError(410, "ticket_used", "This download link was already used; ask for a new download.")
        if row["purpose"] == "download":         # its work is done: it holds nothing from now on
            repo.end_session(conn, sid, "downloaded", now)
        conn.commit()
        security_events.record("video_downloaded", f"session {sid} of video {media.video_id}, device "
                                                   f"{row['device_id']}, {rendition}", row["user_id"])
        # The body runs after the view: no request context (its database connection goes
        # back to the pool now), only what is computed here.
        order = mp4mux.interleaved(media.segment_durations, media.audio["segment_durations"] if audio else [])
        video = session_variants(media, sid, VIDEO, range(media.segment_count))
        plan = [(track, index, AUDIO_VARIANT if track == AUDIO else video[index]) for track, index in order]
        body = _fragments(filestore(), media.video_id, content, rendition, plan)
        resp = Response(_chain(header, body), mimetype="video/mp4",
                        headers={"Content-Disposition": attachment(f"{row['title']} ({rendition}).mp4")})
    except BaseException:
        slots.release()
        raise
    resp.call_on_close(slots.release)
    return resp


def _chain(header: bytes, body):
    yield header
    yield from body


def _fragments(files: FileStore, video_id: str, content: Content, rendition: str,
               plan: list[tuple[str, int, str]]):
    """Each planned (track, index, variant) segment, fetched, decrypted and renumbered."""
    for sequence, (track, index, variant) in enumerate(plan, start=1):
        rend = AUDIO if track == AUDIO else rendition
        try:
            body = files.get_bytes(encrypted_segment_key(video_id, rend, content.file_name(rend, variant, index)))
        except FileStoreError:
            # The status line is gone: the response ends short (an incomplete chunked body).
            log.error("download cut short: segment unavailable",
                      extra={"video_id": video_id, "rendition": rend, "index": index})
            raise
        plain = decrypt_segment(content.segment_key(track, variant, index), video_id, rend, index, body)
        yield mp4mux.fragment(plain, mp4mux.AUDIO_TRACK if track == AUDIO else mp4mux.VIDEO_TRACK, sequence)
