"""Caption tracks of a video (owner or admin): add one per language (WebVTT, or SRT
converted; checked by caption_files), list, delete. The normalised WebVTT is stored at
captions/{video}/{caption}.vtt; streaming-svc lists the tracks in every session's manifest
and serves them behind that session's media token (docs/api.md, "Captions").

Nothing half-written: the object is stored first and the row inserted under the video's
lock; a refused insert (the video deleted meanwhile, the language taken by a concurrent
request) removes the object again. A deleted track loses its object first, then its row, so
a storage failure leaves a row the owner can delete again, never an unlisted object."""
from __future__ import annotations

import logging
import uuid

from flask import Blueprint, Response, current_app, jsonify, request

from svcommon.bodylimit import FORM_OVERHEAD, body_limit
from svcommon.db import IntegrityError
from svcommon.errors import APIError
from svcommon.openapi import SIGNED_IN, responses, validate_as

from . import access, caption_files, object_keys
from . import repository as repo
from .extensions import api, db, filestore
from .present import caption_json
from . import schemas as S

log = logging.getLogger("upload_svc.captions")
bp = Blueprint("captions", __name__, url_prefix="/api/videos/<video_id>/captions")


def _taken(lang: str) -> APIError:
    return APIError(409, "caption_exists", f"this video already has a '{lang}' caption track; delete it first")


def _check_room(conn, video_id: str, lang: str) -> None:
    tracks = repo.captions_of(conn, video_id)
    if any(t["lang"].lower() == lang.lower() for t in tracks):
        raise _taken(lang)
    limit = int(current_app.config["CAPTION_TRACKS_PER_VIDEO"])
    if len(tracks) >= limit:
        raise APIError(409, "too_many_tracks", f"a video has at most {limit} caption tracks")


def _upload_file():
    """The 'file' part (and the form), read only after the caller's access was checked."""
    if request.mimetype != "multipart/form-data":
        raise APIError(415, "unsupported_media_type", "send multipart/form-data with lang, label and a 'file' part")
    f = request.files.get("file")
    if f is None:
        raise APIError(400, "invalid_input", "a caption 'file' part is required")
    limit = int(current_app.config["CAPTION_MAX_BYTES"])
    raw = f.stream.read(limit + 1)
    if len(raw) > limit:
        raise APIError(413, "too_large", f"the caption file exceeds the {limit}-byte limit")
    return f.filename or "", raw


@bp.post("")
@body_limit(lambda cfg: int(cfg["CAPTION_MAX_BYTES"]) + FORM_OVERHEAD)
@api.validate(form=S.CaptionUpload, skip_validation=True, resp=responses({"HTTP_201": S.OneCaption}, 400, 401, 403, 404, 409, 413, 415, 503), tags=["captions"], security=SIGNED_IN)
def add(video_id: str):
    p = access.active_principal("upload")
    conn = db.conn()
    if access.own_video(conn, video_id, p)["status"] == "deleting":
        raise APIError(404, "not_found", "no such video")
    filename, raw = _upload_file()
    asked = validate_as(S.NewCaption, {name: request.form[name] for name in ("lang", "label") if name in request.form})
    lang, label = asked.lang, asked.label
    track = caption_files.parse(raw, filename, int(current_app.config["CAPTION_MAX_CUES"]))
    _check_room(conn, video_id, lang)
    conn.rollback()                    # no snapshot or lock held across the call to file-svc
    cid = uuid.uuid4().hex
    body = track.vtt.encode("utf-8")
    row = {"id": cid, "video_id": video_id, "lang": lang, "label": label,
           "object_key": object_keys.caption_key(video_id, cid), "source_format": track.source_format,
           "cue_count": track.cue_count, "size_bytes": len(body)}
    fs = filestore()
    fs.put_stream(row["object_key"], body, len(body), content_type="text/vtt")
    try:
        video = repo.video(conn, video_id, for_update=True)
        if video is None or video["status"] == "deleting":
            raise APIError(404, "not_found", "no such video")
        _check_room(conn, video_id, lang)
        repo.insert_caption(conn, row)
        conn.commit()
    except BaseException as exc:
        conn.rollback()
        try:
            fs.delete(row["object_key"])
        except Exception:           # storage down as well: the refusal still goes out, logged
            log.exception("could not remove a refused caption object", extra={"key": row["object_key"]})
        if isinstance(exc, IntegrityError):      # the same language added by a concurrent request
            raise _taken(lang) from exc
        raise
    log.info("caption added", extra={"video_id": video_id, "lang": lang, "cues": track.cue_count,
                                     "format": track.source_format})
    return jsonify(caption=caption_json(repo.caption(conn, video_id, cid))), 201


@bp.get("")
@api.validate(resp=responses({"HTTP_200": S.Captions}, 401, 403, 404), tags=["captions"], security=SIGNED_IN)
def listing(video_id: str):
    p = access.active_principal("read")
    conn = db.conn()
    access.own_video(conn, video_id, p)
    return jsonify(items=[caption_json(c) for c in repo.captions_of(conn, video_id)])


@bp.delete("/<caption_id>")
@api.validate(resp=responses({"HTTP_204": None}, 401, 403, 404, 503), tags=["captions"], security=SIGNED_IN)
def remove(video_id: str, caption_id: str):
    p = access.active_principal("upload")
    conn = db.conn()
    access.own_video(conn, video_id, p)
    row = repo.caption(conn, video_id, caption_id) if len(caption_id) == 32 else None
    if row is None:
        raise APIError(404, "not_found", "no such caption track")
    conn.rollback()
    filestore().delete(row["object_key"])
    repo.delete_caption(conn, caption_id)
    conn.commit()
    log.info("caption deleted", extra={"video_id": video_id, "lang": row["lang"]})
    return Response(status=204)
