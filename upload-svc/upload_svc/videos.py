"""Video API: plain streaming upload for scripts, the owner's list, read/edit/delete, and
download of the original (owner/admin; Range passed through to file-svc)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from svcommon import security_events
from svcommon.bodylimit import FORM_OVERHEAD, body_limit
from svcommon.errors import APIError
from svcommon.filestore import NotFound
from svcommon.passwords import hash_password
from svcommon.web import attachment
from svcommon.openapi import SIGNED_IN, responses, validate_as, validated_json

from . import access, ingest, localcopy, parts
from . import repository as repo
from .extensions import api, db, download_slots, filestore, part_buffers, sweep_clock
from .formdata import FormStream
from svcommon.rawbody import BodyReader
from .present import video_json
from .probe import NotAVideo, SniffedSource
from . import schemas as S

log = logging.getLogger("upload_svc.videos")
bp = Blueprint("videos", __name__, url_prefix="/api/videos")


class _Tally:
    """Sees every byte of the file once on its way to file-svc: counts them, stops at the
    size limit (and, for a body of unannounced length, at the owner's free quota:
    ``over_quota(size)`` raises), and writes them to the local copy the probe will read
    (localcopy)."""

    def __init__(self, limit: int, copy: localcopy.LocalCopy | None, room: int | None = None, over_quota=None):
        self.limit, self.size, self.copy = limit, 0, copy
        self.room, self.over_quota = room, over_quota

    def __call__(self, view) -> None:
        self.size += len(view)
        if self.size > self.limit:
            raise APIError(413, "too_large", f"file exceeds the {self.limit}-byte limit")
        if self.room is not None and self.size > self.room:
            self.over_quota(self.size)
        if self.copy:
            self.copy.write(view)


@bp.post("")
@body_limit(lambda cfg: int(cfg["UPLOAD_MAX_BYTES"]) + FORM_OVERHEAD)
@api.validate(form=S.VideoUpload, skip_validation=True, resp=responses({"HTTP_201": S.OneVideo}, 400, 401, 403, 409, 411, 413, 415, 422, 503), tags=["uploads"], security=SIGNED_IN)
def upload():
    p = access.require_uploader()
    if request.mimetype != "multipart/form-data":
        raise APIError(415, "unsupported_media_type", "send multipart/form-data with a 'file' part")
    cfg = current_app.config
    announced = request.content_length
    if announced is not None:
        access.check_size(announced - 64 * 1024 if announced > 64 * 1024 else 0)
    body = BodyReader(request.environ, request.stream, announced)
    form = FormStream(body, request.mimetype_params.get("boundary", ""))
    filename, content_type = form.until_file()
    asked = validate_as(S.NewVideo, {**form.fields, "filename": filename})
    meta = {**asked.model_dump(), "content_type": content_type[:100]}
    try:                        # nothing is written for a file that is no container we accept
        source = SniffedSource(form.file_reader(), None)
    except NotAVideo as exc:
        ingest.reject(None, exc, " at its first bytes")
    conn = db.conn()
    if sweep_clock().due():     # as tus creation does: abandoned uploads and stale local copies
        ingest.sweep_expired()
    # Quota against the announced request size (whole body; the file is nearly all of it),
    # reserved in the video row until the real size is known. A chunked body announces
    # nothing: its bytes are counted against the room left as they stream (stopped at once
    # past it), then reserved under the owner's lock.
    video = ingest.new_video(conn, p, meta, announced or 0)
    vid = video["id"]

    def over_quota(size: int):
        raise access.quota_exceeded(size, access.usage(conn, p.user_id), streaming=True)

    copy = localcopy.LocalCopy.for_post(cfg)
    try:
        counter = _Tally(int(cfg["UPLOAD_MAX_BYTES"]), copy,
                         video["quota_room"] if announced is None else None, over_quota)
        # The file's bytes go to file-svc as S3 parts, a few in flight while the next
        # arrive (parts.py); any failure aborts them before the discard below.
        parts.store(filestore(), video["original_key"], source, parts.part_size(cfg, announced),
                    max(1, int(cfg["TUS_PARTS_IN_FLIGHT"])), part_buffers(), counter)
        form.rest()
        if counter.size == 0:
            raise APIError(400, "empty_file", "the file is empty (0 bytes)")
        if announced is None:  # chunked body: checked (others may have reserved meanwhile) and reserved now
            with access.quota_lock(conn, p.user_id):
                access.check_quota(conn, p, counter.size)
                repo.reserve_size(conn, vid, counter.size)
                conn.commit()
        ingest.finalize(vid, counter.size, copy.finish(counter.size) if copy else None)
    except BaseException:   # whatever stopped it: a refusal, storage down, the client gone
        conn.rollback()
        ingest.discard(vid)
        raise
    finally:
        if copy:
            copy.discard()
    return jsonify(video=video_json(repo.video(conn, vid))), 201


@bp.get("/mine")
@api.validate(resp=responses({"HTTP_200": S.MyVideos}, 401, 403), tags=["videos"], security=SIGNED_IN)
def mine():
    p = access.active_principal("read")
    conn = db.conn()
    return jsonify(items=[video_json(v) for v in repo.videos_of(conn, p.user_id)], usage=access.usage(conn, p.user_id))


@bp.get("/usage")
@api.validate(resp=responses({"HTTP_200": S.Usage}, 401, 403), tags=["videos"], security=SIGNED_IN)
def usage():
    """The caller's storage: {used_bytes, quota_bytes, available_bytes} (null = unlimited)."""
    p = access.active_principal("read")
    return jsonify(access.usage(db.conn(), p.user_id))


@bp.get("/<video_id>")
@api.validate(resp=responses({"HTTP_200": S.OneVideo}, 401, 403, 404), tags=["videos"], security=SIGNED_IN)
def read(video_id: str):
    p = access.active_principal("read")
    return jsonify(video=video_json(access.own_video(db.conn(), video_id, p)))


@bp.patch("/<video_id>")
@api.validate(json=S.VideoEdit, resp=responses({"HTTP_200": S.OneVideo}, 400, 401, 403, 404, 409), tags=["videos"], security=SIGNED_IN)
def edit(video_id: str):
    p = access.active_principal("upload")
    change: S.VideoEdit = validated_json()
    conn = db.conn()
    row = access.own_video(conn, video_id, p, for_update=True)
    fields: dict = {}
    if change.title:
        fields["title"] = change.title
    if change.description is not None:
        fields["description"] = change.description
    if change.downloads_allowed is not None:
        fields["downloads_allowed"] = change.downloads_allowed
    vis = change.visibility or row["visibility"]
    fields["visibility"] = vis
    new_password = change.password
    if vis == "password" and not row["password_hash"] and not new_password:
        raise APIError(400, "invalid_input", S.PASSWORD_REQUIRED, fields={"password": [S.PASSWORD_REQUIRED]})
    fields["password_hash"] = row["password_hash"]
    if vis != "password":
        fields["password_hash"] = None
    elif new_password:
        fields["password_hash"] = hash_password(new_password)
    repo.update_video_meta(conn, video_id, fields)
    # A new password or another visibility (public also: a later password must not find old
    # grants) revokes what the old settings allowed, in the same transaction as the change.
    if vis != row["visibility"] or fields["password_hash"] != row["password_hash"]:
        repo.revoke_grants(conn, video_id)
        ended = repo.end_viewer_sessions(conn, video_id, row["owner_id"]) if vis != "public" else 0
        if ended:
            security_events.record("sessions_revoked", f"video {video_id}: {ended} playback session(s) ended by a "
                                              f"{'visibility' if vis != row['visibility'] else 'password'} change",
                          p.user_id, conn=conn)
    conn.commit()
    return jsonify(video=video_json(repo.video(conn, video_id)))


@bp.delete("/<video_id>")
@api.validate(resp=responses({"HTTP_204": None}, 401, 403, 404, 409, 503), tags=["videos"], security=SIGNED_IN)
def delete(video_id: str):
    p = access.active_principal("upload")
    access.own_video(db.conn(), video_id, p)
    ingest.remove_video(video_id)
    log.info("video deleted", extra={"video_id": video_id, "by": p.user_id})
    return Response(status=204)


class _Relay:
    """A response body relayed from file-svc. The server calls close() when the response
    ends, sent or not (a direct-passthrough body gets no Response.call_on_close): the
    upstream is closed and ``on_close`` runs, once."""

    def __init__(self, upstream, on_close=None):
        self.upstream, self.on_close, self.closed = upstream, on_close, False

    def __iter__(self):
        return self.upstream.iter_content(256 * 1024)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.upstream.close()
            if self.on_close:
                self.on_close()


def _proxy(key: str, filename: str | None, on_close=None):
    try:
        upstream = filestore().get(key, request.headers.get("Range"))
    except NotFound:
        raise APIError(404, "not_found", "the file is not available")
    headers = {k: upstream.headers[k] for k in ("Content-Length", "Content-Range", "Accept-Ranges", "ETag",
                                                "Last-Modified") if k in upstream.headers}
    headers["Content-Type"] = "application/octet-stream" if filename else upstream.headers.get("Content-Type", "")
    if filename:
        headers["Content-Disposition"] = attachment(filename)
    headers["Cache-Control"] = "private, no-store"

    return Response(_Relay(upstream, on_close), status=upstream.status_code, headers=headers,
                    direct_passthrough=True)


@bp.get("/<video_id>/original")
@api.validate(resp=responses(None, 401, 403, 404, 409, 429, 503, media={200: "application/octet-stream"}), tags=["videos"], security=SIGNED_IN)
def original(video_id: str):
    p = access.active_principal("read")
    row = access.own_video(db.conn(), video_id, p)
    if row["status"] == "uploading":
        raise APIError(409, "not_uploaded", "the upload of this video has not finished")
    # The response holds this thread for as long as the client takes to read it: a slow
    # reader must not take every thread, so downloads at once are capped per process.
    slots = download_slots()
    if not slots.acquire(blocking=False):
        raise APIError(429, "downloads_busy", "Too many downloads of originals are running on this server; "
                       "retry shortly.", {"Retry-After": "10"})
    try:
        return _proxy(row["original_key"], row["original_filename"] or f"{video_id}.bin", on_close=slots.release)
    except BaseException:
        slots.release()
        raise


@bp.get("/<video_id>/thumbnail")
@api.validate(resp=responses(None, 401, 403, 404, 503, media={200: "image/jpeg"}), tags=["videos"], security=SIGNED_IN)
def thumbnail(video_id: str):
    p = access.active_principal("read")
    row = access.own_video(db.conn(), video_id, p)
    if not row["thumbnail_key"]:
        raise APIError(404, "no_thumbnail", "no thumbnail yet")
    return _proxy(row["thumbnail_key"], None)
