"""Library API (search, pages, lock flags), thumbnails/posters and password unlock."""
from __future__ import annotations

import math

from flask import Blueprint, Response, current_app, jsonify, request

from svcommon.errors import APIError
from svcommon.filestore import FileStoreError, NotFound
from svcommon.media_keys import media_key
from svcommon.params import arg_int
from svcommon.timeutil import iso
from svcommon.openapi import SIGNED_IN, responses

from . import access
from . import repository as repo
from .extensions import api, db, filestore, playback
from . import schemas as S

bp = Blueprint("library", __name__)
MAX_PAGE = 100_000      # keeps OFFSET far inside what SQL accepts


def item_json(p, v: dict) -> dict:
    return {"id": v["id"], "title": v["title"], "description": v["description"],
            "duration": v["duration"] if v["duration"] is not None else v.get("media_duration"),
            "views": v["views"], "visibility": v["visibility"],
            "thumbnail_url": f"/api/library/{v['id']}/thumbnail" if v["thumbnail_key"] else None,
            "poster_url": f"/api/library/{v['id']}/poster" if v["thumbnail_key"] else None,
            "locked": access.is_locked(p, v, v.get("grant_expires") is not None),
            "created_at": iso(v["created_at"])}


@bp.get("/api/library")
@api.validate(query=S.LibraryQuery, resp=responses({"HTTP_200": S.LibraryPage}, 400, 401, 403), tags=["library"], security=SIGNED_IN)
def library():
    p = access.active_principal(db.conn(), "read")
    q = request.args.get("q", "").strip()[:100]
    page = arg_int("page", 1, maximum=MAX_PAGE)
    size = int(current_app.config["LIBRARY_PAGE_SIZE"])
    total, rows = repo.library(db.conn(), p.user_id, p.is_admin, q, size, (page - 1) * size)
    return jsonify(items=[item_json(p, v) for v in rows], page=page, pages=max(1, math.ceil(total / size)),
                   total=total, q=q)


@bp.get("/api/library/<video_id>")
@api.validate(resp=responses({"HTTP_200": S.LibraryVideo}, 401, 403, 404), tags=["library"], security=SIGNED_IN)
def one(video_id: str):
    """One video the caller may see, ready or not: what a "still processing" page polls."""
    conn = db.conn()
    p = access.active_principal(conn, "read")
    v = access.visible_video(conn, p, video_id)
    status = v["status"] if v["status"] in ("ready", "failed") else "processing"
    granted = repo.has_grant(conn, p.user_id, v["id"])
    item = item_json(p, {**v, "grant_expires": True if granted else None,
                         "thumbnail_key": v["thumbnail_key"] if status == "ready" else None})
    return jsonify({**item, "status": status})


@bp.get("/api/library/<video_id>/<any(thumbnail, poster):kind>")
@api.validate(resp=responses(None, 401, 403, 404, 409, 503, media={200: "image/jpeg"}), tags=["library"], security=SIGNED_IN)
def still(video_id: str, kind: str):
    """Stills are served through us (the bucket is private), cached like init segments."""
    p = access.active_principal(db.conn(), "read")
    video = access.visible_video(db.conn(), p, video_id)
    access.ready(video)
    key = video["thumbnail_key"] if kind == "thumbnail" and video["thumbnail_key"] else media_key(
        video_id, "thumb.jpg" if kind == "thumbnail" else "poster.jpg")
    files = filestore()
    try:
        body = playback().objects.get_or_load(("still", key), lambda: files.get_bytes(key))
    except NotFound:
        raise APIError(404, "not_found", "no picture for this video")
    except FileStoreError as exc:
        raise APIError(503, "storage_unavailable", "video storage is unavailable; retry shortly") from exc
    return Response(body, mimetype="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
