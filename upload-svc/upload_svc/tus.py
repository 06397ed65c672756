"""tus 1.0 server at /api/uploads: core (HEAD, PATCH), creation, termination, checksum,
expiration. Upload state lives in MariaDB, so any replica can continue any upload and
an upload survives restarts; bytes go to S3 at part URLs file-svc signs (see tuswrite)."""
from __future__ import annotations

import logging
import uuid

from flask import Blueprint, Response, current_app, request

from svcommon.bodylimit import body_limit
from svcommon.errors import APIError
from svcommon.filestore import NotFound
from svcommon.params import header_uint
from svcommon.timeutil import utcnow_naive
from svcommon.openapi import SIGNED_IN, responses, validate_as

from . import access, ingest, localcopy, parts
from . import repository as repo
from . import schemas as S
from .extensions import api, db, filestore, sweep_clock
from .probe import NotAVideo, SniffedSource
from .tusmeta import upload_metadata
from svcommon.rawbody import BodyReader
from .tuswrite import CHECKSUMS, LeaseLost, PatchWriter, parse_checksum

log = logging.getLogger("upload_svc.tus")
bp = Blueprint("tus", __name__, url_prefix="/api/uploads")

TUS_VERSION = "1.0.0"


def _headers(**extra) -> dict:
    h = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    h.update({k.replace("_", "-"): str(v) for k, v in extra.items()})
    return h


@bp.after_request
def _tus_headers(resp):
    resp.headers.setdefault("Tus-Resumable", TUS_VERSION)
    return resp


@bp.before_request
def _check_version():
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise APIError(412, "tus_version", f"Tus-Resumable: {TUS_VERSION} is required",
                       {"Tus-Version": TUS_VERSION})


@bp.route("", methods=["OPTIONS"])
@bp.route("/<upload_id>", methods=["OPTIONS"])
def options(upload_id=None):
    return Response(status=204, headers=_headers(
        Tus_Version=TUS_VERSION, Tus_Extension="creation,termination,checksum,expiration",
        Tus_Max_Size=current_app.config["UPLOAD_MAX_BYTES"], Tus_Checksum_Algorithm=",".join(CHECKSUMS)))


def _part_size(length: int) -> int:
    # Each PATCH may split its last whole part in two halves (tuswrite): room for twice the parts.
    return parts.part_size(current_app.config, length, parts.MAX_PARTS // 2)


@bp.post("")
@api.validate(headers=S.TusCreate, resp=responses({"HTTP_201": None}, 400, 401, 403, 409, 412, 413, 503), tags=["tus"], security=SIGNED_IN)
def create():
    p = access.require_uploader()
    if "Upload-Defer-Length" in request.headers:
        raise APIError(400, "defer_length_unsupported", "Upload-Length is required (deferred length is not supported)")
    length = header_uint("Upload-Length")
    if request.content_length:
        raise APIError(400, "creation_with_upload_unsupported", "send data with PATCH after creating the upload")
    access.check_size(length)  # 413 before anything is stored
    if length == 0:
        raise APIError(400, "empty_file", "the file is empty (0 bytes)")
    meta = upload_metadata(request.headers.get("Upload-Metadata"))
    fields = {**validate_as(S.NewVideo, meta).model_dump(),
              "content_type": (meta.get("filetype") or "application/octet-stream")[:100]}
    # Abandoned uploads are swept when a valid upload is being created (at most once a
    # minute per process, before its quota check): no cron job to deploy, and the cost lands
    # on uploaders, not on viewers or on refused requests.
    if sweep_clock().due():
        ingest.sweep_expired()
    conn = db.conn()
    video = ingest.new_video(conn, p, fields, length)
    try:
        s3_upload_id = filestore().create_multipart(video["original_key"], "application/octet-stream")
        upload_id = uuid.uuid4().hex
        repo.insert_upload(conn, {"id": upload_id, "video_id": video["id"], "owner_id": p.user_id,
                                  "upload_length": length, "metadata": {"filename": fields["filename"]},
                                  "object_key": video["original_key"], "s3_upload_id": s3_upload_id,
                                  "part_size": _part_size(length),
                                  "expiry_hours": int(current_app.config["UPLOAD_EXPIRY_HOURS"])})
        conn.commit()
    except BaseException:
        conn.rollback()
        repo.delete_video(conn, video["id"])
        conn.commit()
        raise
    log.info("tus upload created", extra={"upload_id": upload_id, "video_id": video["id"], "length": length})
    return Response(status=201, headers=_headers(Location=f"/api/uploads/{upload_id}", X_Video_Id=video["id"]))


def _own_upload(upload_id: str) -> dict:
    p = access.require_uploader()
    up = repo.upload(db.conn(), upload_id) if len(upload_id) == 32 and upload_id.isalnum() else None
    if up is None or (up["owner_id"] != p.user_id and not p.is_admin):
        raise APIError(404, "not_found", "no such upload (finished long ago, cancelled, or never created)")
    return up


@bp.route("/<upload_id>", methods=["HEAD"])
@api.validate(headers=S.TusOffset, resp=responses({"HTTP_200": None}, 401, 403, 404, 409, 410, 412, 422, 423, 503), tags=["tus"], security=SIGNED_IN)
def head(upload_id: str):
    up = _own_upload(upload_id)
    if up["status"] == "completing" and _lease_expired(up):
        # Every byte is in, but the upload is not done: the request that wrote the last byte
        # is finishing it, or died before the video was queued. A client that sees
        # Upload-Offset = Upload-Length treats the upload as finished and never sends the
        # last PATCH again (tus-js-client does so), so its resume finishes a dead request's
        # work (a live one's is left to it).
        _complete(up)
    return Response(status=200, headers=_headers(
        Upload_Offset=up["upload_offset"], Upload_Length=up["upload_length"], X_Video_Id=up["video_id"],
        Upload_Expires=up["expires_at"].strftime("%a, %d %b %Y %H:%M:%S GMT")))


@bp.patch("/<upload_id>")
@body_limit("UPLOAD_MAX_BYTES")   # a chunk never exceeds the file (checked below)
@api.validate(headers=S.TusPatch, resp=responses({"HTTP_204": None}, 400, 401, 403, 404, 409, 412, 413, 415, 422, 423, 460, 503), tags=["tus"], security=SIGNED_IN)
def patch(upload_id: str):
    up = _own_upload(upload_id)
    if request.mimetype != "application/offset+octet-stream":
        raise APIError(415, "unsupported_media_type", "PATCH needs Content-Type: application/offset+octet-stream")
    offset = header_uint("Upload-Offset")
    if up["status"] == "completing" and offset == up["upload_length"] and _lease_expired(up):
        _complete(up)  # a replica died while finalising: finish its work
        return Response(status=204, headers=_headers(Upload_Offset=offset, X_Video_Id=up["video_id"]))
    if up["status"] != "receiving":
        raise APIError(409 if up["status"] == "done" else 423, "upload_finished" if up["status"] == "done"
                       else "upload_busy", "this upload is already complete" if up["status"] == "done"
                       else "this upload is being finalised", {"Upload-Offset": str(up["upload_offset"])})
    if offset != up["upload_offset"]:
        raise APIError(409, "offset_mismatch", f"Upload-Offset is {offset} but the server has {up['upload_offset']} "
                       "bytes; resume from there", {"Upload-Offset": str(up["upload_offset"])})
    length = request.content_length
    if length is not None and offset + length > up["upload_length"]:
        raise APIError(400, "exceeds_length", "this chunk goes beyond the declared Upload-Length")
    checksum = parse_checksum(request.headers.get("Upload-Checksum"))
    conn = db.conn()
    token = uuid.uuid4().hex
    if not repo.take_lease(conn, upload_id, token, int(current_app.config["TUS_LEASE_SECONDS"])):
        conn.rollback()
        raise APIError(423, "upload_busy", "another request is writing to this upload; retry in a few seconds",
                       {"Retry-After": "3"})
    conn.commit()
    try:
        body = BodyReader(request.environ, request.stream, length)
        if offset == 0:         # a file that is no container we accept goes at once, not at its end
            try:
                body = SniffedSource(body, up["upload_length"])
            except NotAVideo as exc:
                ingest.reject(up["video_id"], exc, " at its first bytes")
        new_offset, complete = PatchWriter(up, token, checksum).write(body, length)
    except LeaseLost:
        raise APIError(409, "lease_lost", "another request took over this upload; check the offset and resume")
    finally:
        conn.rollback()
        repo.release_lease(conn, upload_id, token)
        conn.commit()
    if complete:
        _complete(up)
    return Response(status=204, headers=_headers(Upload_Offset=new_offset, X_Video_Id=up["video_id"]))


def _lease_expired(up: dict) -> bool:
    return up["lock_expires_at"] is None or up["lock_expires_at"] < utcnow_naive()


def _complete(up: dict) -> None:
    """Assemble the parts and queue the video, unless another request is doing it now.
    Crash-safe: the upload is marked done in the transaction that queues the video
    (ingest.finalize commits both), so a process killed on the way leaves it 'completing',
    and the client's next HEAD or PATCH finishes it. Who finishes is decided by a named lock
    (repo.lock_completion), not a row lock: nothing waits behind the probe."""
    conn = db.conn()
    if not repo.lock_completion(conn, up["id"]):
        return                          # a live request is finishing it
    try:
        fresh = repo.upload(conn, up["id"])
        conn.rollback()
        if fresh is None or fresh["status"] != "completing":
            return                      # finished (or cancelled) by another request meanwhile
        fs = filestore()
        try:
            fs.complete_multipart(up["object_key"], up["s3_upload_id"], fresh["parts"])
        except NotFound:
            # Completed before a crash? Then the object is there with the full length.
            info = fs.head(up["object_key"])
            if not info or info["size"] != up["upload_length"]:
                ingest.remove_video(up["video_id"], None)
                raise APIError(410, "upload_lost", "the stored parts of this upload are gone; please upload again")
        cfg = current_app.config
        ingest.finalize(up["video_id"], up["upload_length"],
                        localcopy.tus_complete(cfg, up["id"], up["upload_length"]), tus_upload_id=up["id"])
    finally:
        try:
            repo.unlock_completion(conn, up["id"])
        except Exception:             # the link is gone: so is the lock (and the pool resets it anyway)
            log.warning("could not release an upload's completion lock", extra={"upload_id": up["id"]})


@bp.delete("/<upload_id>")
@api.validate(headers=S.TusOffset, resp=responses({"HTTP_204": None}, 401, 403, 404, 412, 503), tags=["tus"], security=SIGNED_IN)
def terminate(upload_id: str):
    up = _own_upload(upload_id)
    if up["status"] == "done":
        raise APIError(409, "upload_finished", "this upload is complete; delete the video instead")
    ingest.remove_video(up["video_id"], up)
    log.info("tus upload terminated", extra={"upload_id": upload_id, "video_id": up["video_id"]})
    return Response(status=204, headers=_headers())
