"""Multipart assembly for callers that receive an object in pieces (upload-svc's tus
uploads), S3-style sub-resources of /objects/{key}:
  POST   ?uploads                  create      -> 201 {upload_id}
  GET    ?upload_id=U&part=N&length=L  part N's URL -> {n, url, expires_in}; the caller PUTs
                                   the part's L bytes to url (S3 answers with its ETag)
  POST   ?upload_id=U              complete    (JSON {parts:[{n, etag}]}) -> {key, size, etag}
  DELETE ?upload_id=U              abort       -> 204
The caller keeps the upload id and part ETags (in its database), so an upload survives
restarts of either service. A part's bytes never pass through file-svc: it signs a URL for
them (S3's credentials stay here), and the caller sends them to S3 itself. Views are dispatched from objects.py."""
from __future__ import annotations

from flask import Response, current_app, jsonify, request

from svcommon.errors import APIError
from svcommon.params import parse_uint

from . import storage
from .callers import require
from .object_keys import DELETE, WRITE

MAX_PARTS = 10000
# A part URL is fetched right before its PUT starts (S3 checks the expiry when a request
# begins, not when it ends): minutes are plenty, and a leaked one soon stops working.
PART_URL_SECONDS = 300


def _upload_id() -> str:
    uid = request.args.get("upload_id")
    if not isinstance(uid, str) or not uid or len(uid) > 1024:
        raise APIError(400, "invalid_input", "'upload_id' is required")
    return uid


def create(key: str, content_type: str):
    require(WRITE, key)
    return jsonify(upload_id=storage.create_multipart(key, content_type), key=key), 201


def part_url(key: str):
    """A signed URL the caller PUTs part N to, straight to S3: the part's bytes skip this
    hop (and SigV4's hash of them) while S3's credentials stay here. The URL is bound to
    the key, the upload, the part number and the exact length (at most FILE_MAX_PART_BYTES)."""
    require(WRITE, key)
    upload_id = _upload_id()
    number = parse_uint(request.args.get("part"), "part", minimum=1, maximum=MAX_PARTS, code="invalid_part_number")
    limit = int(current_app.config["FILE_MAX_PART_BYTES"])
    length = parse_uint(request.args.get("length"), "length", minimum=1, maximum=2 ** 62, code="invalid_length")
    if length > limit:
        raise APIError(413, "part_too_large", f"a part may be at most {limit} bytes")
    url = storage.part_url(key, upload_id, number, length, PART_URL_SECONDS)
    return jsonify(n=number, url=url, expires_in=PART_URL_SECONDS)


def complete(key: str):
    require(WRITE, key)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("parts"), list) or not body["parts"]:
        raise APIError(400, "invalid_input", "body must be {parts:[{n, etag}, ...]}")
    # JSON integers only: int() would also take strings (Unicode digits too), floats and booleans.
    parts = [{"n": p.get("n"), "etag": p.get("etag")} if isinstance(p, dict) else {} for p in body["parts"]]
    if not all(type(p.get("n")) is int and 1 <= p["n"] <= MAX_PARTS and isinstance(p.get("etag"), str)
               for p in parts):
        raise APIError(400, "invalid_input", f"each part needs an integer 'n' (1..{MAX_PARTS}) and an 'etag'")
    return jsonify(storage.complete_multipart(key, _upload_id(), parts))


def abort(key: str):
    require(DELETE, key)        # discards stored parts: a delete (fsck may, without write)
    storage.abort_multipart(key, _upload_id())
    return Response(status=204)
