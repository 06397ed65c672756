"""The life of a video in upload-svc: created (status 'uploading'), finalised once every
byte is stored (probe → 'queued' + a processing job, or removed with a clear reason),
and deleted (every object under its prefixes, then its rows)."""
from __future__ import annotations

import logging
import uuid
from typing import NoReturn

from flask import current_app

from svcommon import jobqueue, webhooks
from svcommon.auth import Principal
from svcommon.errors import APIError
from svcommon.mediaprobe import MediaLimits
from svcommon.passwords import hash_password

from . import access, localcopy, object_keys
from . import repository as repo
from .extensions import db, filestore
from .probe import Busy, NotAVideo, probe

log = logging.getLogger("upload_svc.ingest")


def new_video(conn, p: Principal, meta: dict, length: int) -> dict:
    """Insert the video row after the size and quota checks, reserving ``length`` bytes of
    the owner's quota (its size_bytes; committed before the owner's lock is released).
    ``row["quota_room"]``: the owner's bytes still free after it (None = unlimited)."""
    access.check_size(length)
    with access.quota_lock(conn, p.user_id):
        room = access.check_quota(conn, p, length)
        vid = uuid.uuid4().hex
        row = {"id": vid, "owner_id": p.user_id, "title": meta["title"], "description": meta["description"],
               "visibility": meta["visibility"],
               "password_hash": hash_password(meta["password"]) if meta.get("password") else None,
               "original_key": object_keys.original_key(vid), "original_filename": meta["filename"],
               "content_type": meta["content_type"], "size_bytes": length}
        repo.insert_video(conn, row)
        conn.commit()
    return {**row, "quota_room": room}


def finalize(video_id: str, size: int, local: str | None = None, tus_upload_id: str | None = None) -> dict:
    """All bytes are in S3: check it is a video, then queue it for processing. Not a
    video → everything about it is removed and the uploader gets a 422 with the reason;
    no check possible (probe slots busy, storage down, scratch disk full) → removed too, 503.
    ``local``: the upload's complete local copy (removed here, whatever happens).
    ``tus_upload_id``: that upload is marked done in the transaction that queues the video."""
    conn = db.conn()
    cfg = current_app.config
    key = object_keys.original_key(video_id)
    try:
        info = probe(filestore(), key, MediaLimits.from_config(cfg), int(cfg["PROBE_CONCURRENCY"]),
                     float(cfg["PROBE_WAIT_SECONDS"]), cfg.get("PROBE_SCRATCH_DIR") or None, local)
    except NotAVideo as exc:
        reject(video_id, exc)
    except Busy:
        log.warning("upload refused: every probe slot busy", extra={"video_id": video_id})
        kept = _outcome(discard(video_id))
        raise APIError(503, "probe_busy", f"the server is checking too many uploads right now. {kept} "
                       "Please upload again shortly.", {"Retry-After": "30"})
    except Exception:
        # Storage unavailable or the scratch disk full while fetching the original: the upload
        # is complete, so it cannot be resumed; keeping it would leave it 'uploading' forever.
        log.exception("upload could not be checked", extra={"video_id": video_id})
        kept = _outcome(discard(video_id))
        raise APIError(503, "probe_failed", f"the upload could not be checked right now. {kept} "
                       "Please upload again shortly.", {"Retry-After": "30"})
    finally:
        localcopy.remove(local)
    if not repo.mark_probed(conn, video_id, size, info):
        conn.rollback()                   # deleted while it was probed: nothing to queue
        raise APIError(409, "gone_meanwhile", "The video was deleted while its upload was being finished.")
    if tus_upload_id is not None and not repo.mark_upload_done(conn, tus_upload_id):
        conn.rollback()                   # cancelled meanwhile (its video was removed with it)
        raise APIError(409, "gone_meanwhile", "The upload was cancelled while it was being finished.")
    jobqueue.enqueue(conn, jobqueue.VIDEO_PROCESS, {"video_id": video_id}, subject=video_id)
    conn.commit()
    log.info("video queued", extra={"video_id": video_id, "bytes": size, **info})
    return info


def reject(video_id: str | None, exc: NotAVideo, when: str = "") -> NoReturn:
    """Refuse an upload that is not a video we accept: what it left is removed (``video_id``:
    None where nothing was written yet) and the uploader gets a 422 with the reason."""
    log.warning(f"upload rejected{when}", extra={"video_id": video_id, "reason": str(exc), "limit": exc.limit})
    kept = _outcome(discard(video_id)) if video_id else "Nothing was kept."
    if exc.limit:
        raise APIError(422, "media_limit_exceeded", f"upload failed: {exc} ({exc.limit}). {kept}")
    raise APIError(422, "not_a_video", f"upload failed, not a video we accept: {exc}. {kept}")


def discard(video_id: str) -> bool:
    """Remove what a refused or failed upload left behind; False when storage is down too.
    Then the row stays (deleting it later retries the object clean-up), marked failed with
    the reason: never 'uploading' or 'deleting' forever, and its owner sees why."""
    conn = db.conn()
    row = repo.video(conn, video_id)
    if row is None or row["status"] == "failed":     # gone, or a discard already marked it
        return row is None
    try:
        remove_video(video_id)
        return True
    except Exception:
        log.exception("cleanup after a failed upload failed", extra={"video_id": video_id})
        conn.rollback()
        repo.mark_failed(conn, video_id, "upload failed because storage was unavailable; delete it and retry")
        conn.commit()
        return False


def _outcome(removed: bool) -> str:
    return "Nothing was kept." if removed else "It is listed as failed: delete it to free its space."


def remove_video(video_id: str, upload: dict | None = None) -> None:
    """Delete every object of the video (originals, tus tails, derived media), abort an
    unfinished multipart upload, then the rows. First the video is marked 'deleting' and
    committed, so no lock is held across the calls to file-svc and every reader treats it
    as gone; a worker that writes objects for it afterwards sees the mark and removes them
    itself (watermark-svc dbcatalogue.discard_if_deleted). Objects before the row: if
    storage is down the row stays 'deleting' and the delete can be retried, so nothing is
    ever orphaned in S3."""
    fs = filestore()
    conn = db.conn()
    repo.mark_deleting(conn, video_id)
    if upload is None:
        upload = repo.upload_for_video(conn, video_id)
    conn.commit()
    if upload and upload["status"] != "done":
        fs.abort_multipart(upload["object_key"], upload["s3_upload_id"])
        localcopy.discard_tus(current_app.config, upload["id"])
    for prefix in object_keys.video_prefixes(video_id):
        fs.delete_prefix(prefix)
    if upload is None or upload["status"] == "done":     # an abandoned upload was never a video to its owner
        webhooks.emit_video_event(conn, "video.deleted", video_id)   # sent once the delete commits
    repo.delete_video(conn, video_id)
    conn.commit()


def sweep_expired(limit: int = 20) -> int:
    """Remove uploads abandoned for UPLOAD_EXPIRY_HOURS (the tus Upload-Expires we promised):
    abort their S3 multipart upload, delete their objects, then their rows. Any replica may
    sweep; a second sweeper of the same upload finds nothing left to do."""
    removed = 0
    for upload in repo.expired_uploads(db.conn(), limit):
        try:
            remove_video(upload["video_id"], upload)
            removed += 1
        except Exception:
            log.exception("could not remove an expired upload", extra={"video_id": upload["video_id"]})
    if removed:
        log.info("expired uploads removed", extra={"count": removed})
    localcopy.sweep(current_app.config)
    return removed
