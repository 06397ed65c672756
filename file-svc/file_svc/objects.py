"""/objects: streaming PUT, ranged GET, HEAD, DELETE (one or by prefix), list by prefix;
/multipart: the unfinished multipart uploads under a prefix (fsck)."""
from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from svcommon.bodylimit import body_limit
from svcommon.errors import APIError
from svcommon.params import arg_int
from svcommon.openapi import responses

from . import multipart, storage
from .callers import authenticate, require
from .object_keys import DELETE, READ, WRITE, validate_key, validate_prefix
from .extensions import api, part_buffers, s3
from svcommon.rawbody import BodyReader
from . import schemas as S

bp = Blueprint("objects", __name__)

RANGE_RE = re.compile(r"^bytes=(\d+-\d*|-\d+)$", re.ASCII)   # \d alone takes any script's digits
CONTENT_TYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
STREAM_CHUNK = 256 * 1024


@bp.before_request
def _caller():
    authenticate()
    s3().ensure_bucket()


def _content_type() -> str:
    ct = (request.headers.get("Content-Type") or "").split(";")[0].strip()
    return ct if CONTENT_TYPE_RE.match(ct) else "application/octet-stream"


@bp.put("/objects/<path:key>")
@body_limit("FILE_MAX_OBJECT_BYTES")   # internal callers enforce their own, smaller limits
@api.validate(resp=responses({"HTTP_201": S.Stored}, 400, 401, 403, 413, 503), tags=["objects"], security=S.SERVICE)
def put_object(key: str):
    validate_key(key)
    if "upload_id" in request.args:
        raise APIError(400, "invalid_input", "a multipart upload's parts go straight to S3: "
                       "GET ?upload_id=&part=&length= gives the URL to PUT each part to")
    require(WRITE, key)
    cfg = current_app.config
    # The body is read one part at a time, straight into reused part buffers (rawbody: a
    # chunked body goes through werkzeug's unbuffered input instead).
    body = BodyReader(request.environ, request.stream, request.content_length)
    info = storage.put_stream(key, body, _content_type(), int(cfg["FILE_PART_SIZE"]),
                              int(cfg["FILE_PUT_CONCURRENCY"]), part_buffers())
    if request.content_length is not None and info["size"] != request.content_length:
        storage.delete(key)  # a short body means the caller died mid-way: keep nothing
        raise APIError(400, "incomplete_body", "request body ended before Content-Length bytes")
    return jsonify(info), 201


def _object_headers(obj: dict) -> dict:
    headers = {"Accept-Ranges": "bytes", "Content-Type": obj.get("ContentType") or "application/octet-stream",
               "Content-Length": str(obj["ContentLength"])}
    if obj.get("ETag"):
        headers["ETag"] = obj["ETag"]
    if obj.get("LastModified"):
        headers["Last-Modified"] = obj["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


@bp.get("/objects/<path:key>")
@api.validate(query=S.PartQuery, resp=responses(None, 400, 401, 403, 404, 413, 416, 503, media={200: "application/octet-stream", 206: "application/octet-stream"}), tags=["objects"], security=S.SERVICE)
def get_object(key: str):
    validate_key(key)
    if "upload_id" in request.args:
        return multipart.part_url(key)
    require(READ, key)
    rng = request.headers.get("Range", "").replace(" ", "")
    rng = rng if RANGE_RE.match(rng) else None  # multi-range or junk: serve the whole object
    if rng:
        size = storage.head(key)["ContentLength"]
        start = rng[6:].split("-")[0]
        if (start and int(start) >= size) or rng == "bytes=-0" or size == 0:
            raise APIError(416, "range_not_satisfiable", f"range {rng} is outside the object ({size} bytes)",
                           {"Content-Range": f"bytes */{size}"})
    obj = storage.get(key, rng)
    body = obj["Body"]

    def stream():
        try:
            yield from body.iter_chunks(STREAM_CHUNK)
        finally:
            body.close()

    headers = _object_headers(obj)
    status = 200
    if rng and obj.get("ContentRange"):
        status = 206
        headers["Content-Range"] = obj["ContentRange"]
    return Response(stream_with_context(stream()), status=status, headers=headers, direct_passthrough=True)


@bp.post("/objects/<path:key>")
@body_limit(4 * 1024 * 1024)   # completing a multipart upload lists up to 9000 parts
@api.validate(query=S.PostQuery, resp=responses({"HTTP_200": S.Stored, "HTTP_201": S.Stored}, 400, 401, 403, 404, 503), tags=["objects"], security=S.SERVICE)
def post_object(key: str):
    validate_key(key)
    if "uploads" in request.args:
        return multipart.create(key, _content_type())
    if "upload_id" in request.args:
        return multipart.complete(key)
    raise APIError(400, "invalid_input", "POST needs ?uploads (start a multipart upload) or ?upload_id (complete it)")


@bp.route("/objects/<path:key>", methods=["HEAD"])
@api.validate(resp=responses({"HTTP_200": None}, 400, 401, 403, 404, 503), tags=["objects"], security=S.SERVICE)
def head_object(key: str):
    require(READ, validate_key(key))
    return Response(status=200, headers=_object_headers(storage.head(key)))


@bp.delete("/objects/<path:key>")
@api.validate(query=S.AbortQuery, resp=responses({"HTTP_204": None}, 400, 401, 403, 404, 503), tags=["objects"], security=S.SERVICE)
def delete_object(key: str):
    validate_key(key)
    if "upload_id" in request.args:
        return multipart.abort(key)
    require(DELETE, key)
    storage.delete(key)
    return Response(status=204)


@bp.delete("/objects")
@api.validate(query=S.PrefixQuery, resp=responses({"HTTP_200": S.Deleted}, 400, 401, 403, 503), tags=["objects"], security=S.SERVICE)
def delete_by_prefix():
    prefix = validate_prefix(request.args.get("prefix", ""))
    require(DELETE, prefix)
    return jsonify(deleted=storage.delete_prefix(prefix), prefix=prefix)


@bp.get("/objects")
@api.validate(query=S.ListQuery, resp=responses({"HTTP_200": S.Listing}, 400, 401, 403, 503), tags=["objects"], security=S.SERVICE)
def list_objects():
    prefix = validate_prefix(request.args.get("prefix", ""))
    require(READ, prefix)
    limit = min(1000, arg_int("limit", 1000, maximum=1_000_000))
    items, nxt = storage.list_page(prefix, request.args.get("continuation") or None, limit)
    return jsonify(items=items, next=nxt, prefix=prefix)


@bp.get("/multipart")
def list_multipart():
    """Unfinished multipart uploads under a prefix (tus uploads in progress, streaming PUTs in
    flight, and any a crash left behind): what the consistency checker reconciles."""
    prefix = validate_prefix(request.args.get("prefix", ""))
    require(READ, prefix)
    return jsonify(items=list(storage.list_multipart(prefix)), prefix=prefix)
