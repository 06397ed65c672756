"""Public, cacheable ciphertext (docs/api.md, "Encrypted media"):
``GET|HEAD /media/{video_id}/{rendition}/{index:05d}-{32 hex}.m4s``.

No authentication: the body is a segment encrypted once at processing time, useless
without the key that only a live session of the right variant gets (keys.py). The gateway
caches 200s (nginx proxy_cache) so only a cache miss reaches us; any CDN may do the same.
The shape is checked strictly before anything is read, so nothing but the stored
ciphertext objects ``media/{video}/enc/{rendition}/{name}`` can be reached this way.
Range (206/416) and If-None-Match (304) are honoured here too (werkzeug), for clients
and caches that pass them through. Refusals are JSON and ``no-store``: never cached."""
from __future__ import annotations

import hashlib
import re

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from svcommon.errors import APIError
from svcommon.filestore import FileStoreError, NotFound
from svcommon.media_crypto import FILE_NAME_RE
from svcommon.media_keys import encrypted_segment_key
from svcommon.openapi import PUBLIC, responses

from . import repository as repo
from .extensions import api, db, filestore

bp = Blueprint("cdn", __name__)

VIDEO_ID_RE = re.compile(r"^[0-9a-f]{32}$")
RENDITION_RE = re.compile(r"^[a-z0-9]{1,16}$")
IMMUTABLE = "public, max-age=31536000, immutable"


NO_STORE = {"Cache-Control": "no-store"}     # a refusal must never be cached


def strong_etag(body: bytes) -> str:
    """Unquoted; werkzeug quotes it. The first 32 hex characters of the body's SHA-256."""
    return hashlib.sha256(body).hexdigest()[:32]


@bp.route("/media/<path:path>", methods=["GET", "HEAD"])
@api.validate(resp=responses(None, 404, 503, media={200: "application/octet-stream"}), tags=["delivery"], security=PUBLIC)
def media(path: str):
    parts = path.split("/")
    # isascii: FILE_NAME_RE's \d also matches other scripts' digits ("٠٠٠٠١").
    if not path.isascii() or len(parts) != 3 or not VIDEO_ID_RE.match(parts[0]) or not RENDITION_RE.match(parts[1]) \
            or not FILE_NAME_RE.match(parts[2]):
        raise APIError(404, "not_found", "no such media object (/media/{video}/{rendition}/{NNNNN}-{32 hex}.m4s)",
                       NO_STORE)
    video_id, rendition, name = parts
    # A video being deleted is gone at once, before its objects are: a miss then must not
    # put its ciphertext back into a cache.
    if not repo.video_exists(db.conn(), video_id):
        raise APIError(404, "not_found", "no such media object", NO_STORE)
    try:
        body = filestore().get_bytes(encrypted_segment_key(video_id, rendition, name))
    except NotFound:
        raise APIError(404, "not_found", "no such media object", NO_STORE)
    except FileStoreError as exc:
        if not exc.unavailable:
            raise APIError(502, "storage_error", "Video storage refused the request.", NO_STORE)
        raise APIError(503, "storage_unavailable", "Video storage is unavailable; retrying shortly helps.",
                       {**NO_STORE, "Retry-After": "5"})
    resp = Response(body, mimetype="application/octet-stream", headers={"Cache-Control": IMMUTABLE})
    resp.set_etag(strong_etag(body))
    try:
        return resp.make_conditional(request, accept_ranges=True, complete_length=len(body))
    except RequestedRangeNotSatisfiable:
        raise APIError(416, "range_not_satisfiable", "the range is outside the object",
                       {**NO_STORE, "Content-Range": f"bytes */{len(body)}"})
