"""Video status and the published media row (the processing jobs' SQL)."""
from __future__ import annotations

import json

from svcommon.db import execute, query

STOPPED = ("deleting", "failed")        # no part of the processing writes to such a video


def video(conn, video_id: str) -> dict | None:
    return query(conn, "SELECT id, status, original_key FROM videos WHERE id = %s", (video_id,), one=True)


def video_owner(conn, video_id: str) -> str | None:
    row = query(conn, "SELECT owner_id FROM videos WHERE id = %s", (video_id,), one=True)
    return row["owner_id"] if row else None


def video_ready(conn, video_id: str) -> bool:
    row = query(conn, "SELECT status FROM videos WHERE id = %s", (video_id,), one=True)
    return row is not None and row["status"] == "ready"


def video_gone(conn, video_id: str) -> bool:
    """Deleted, or being deleted: upload-svc commits the 'deleting' mark before it removes
    the video's objects, so objects written before this read are removed by that delete."""
    row = query(conn, "SELECT status FROM videos WHERE id = %s", (video_id,), one=True)
    return row is None or row["status"] == "deleting"


def video_stopped(conn, video_id: str) -> bool:
    """Gone (above), or failed: a failed video's parts still running stop (their outputs
    would outlive the failure's cleanup, their stage line overwrite its reason)."""
    row = query(conn, "SELECT status FROM videos WHERE id = %s", (video_id,), one=True)
    return row is None or row["status"] in STOPPED


def set_video_status(conn, video_id: str, status: str, message: str) -> None:
    execute(conn, "UPDATE videos SET status = %s, status_message = %s, updated_at = UTC_TIMESTAMP(6) "
                  "WHERE id = %s AND status <> 'deleting'", (status, message[:500], video_id))


def publish_media(conn, video_id: str, meta: dict, thumbnail_key: str, content_secret_enc: bytes,
                  media_bytes: int | None = None) -> bool:
    """False (nothing written) when the video is being deleted, gone or failed. The video row is
    updated first: its lock then keeps it there for the media row's foreign key. The
    segments are stored sealed under ``content_secret_enc``'s secret: delivery v2;
    ``media_bytes`` what they take in the store (media_store.stored_bytes). Called
    again as higher rungs join: ready_at stays when the video first became playable (the
    library's order). The stage line is the caller's (set_video_message)."""
    if execute(conn, "UPDATE videos SET status = 'ready', thumbnail_key = %s, "
                     "ready_at = COALESCE(ready_at, UTC_TIMESTAMP(6)), updated_at = UTC_TIMESTAMP(6) "
                     "WHERE id = %s AND status NOT IN ('deleting', 'failed')", (thumbnail_key, video_id)) != 1:
        return False
    execute(conn, "REPLACE INTO video_media (video_id, segment_count, duration, metadata, content_secret_enc, "
                  "delivery_version, media_bytes) VALUES (%s, %s, %s, %s, %s, 2, %s)",
            (video_id, meta["segment_count"], meta["duration"], json.dumps(meta), content_secret_enc, media_bytes))
    return True


def media_of(conn, video_id: str) -> dict | None:
    row = query(conn, "SELECT metadata FROM video_media WHERE video_id = %s", (video_id,), one=True)
    return json.loads(row["metadata"]) if row else None


def set_video_message(conn, video_id: str, message: str) -> None:
    """The stage line the uploader sees ('playable at 360p · 480p 40 %'), status unchanged;
    a failed video keeps its reason."""
    execute(conn, "UPDATE videos SET status_message = %s, updated_at = UTC_TIMESTAMP(6) "
                  "WHERE id = %s AND status NOT IN ('deleting', 'failed')", (message[:500], video_id))


def fail_unless_ready(conn, video_id: str, reason: str) -> bool:
    """A part of the processing failed for good: failed (True), unless already playable
    (then only noted: its published ladder stays)."""
    if execute(conn, "UPDATE videos SET status = 'failed', status_message = %s, updated_at = UTC_TIMESTAMP(6) "
                     "WHERE id = %s AND status NOT IN ('deleting', 'ready')", (reason[:500], video_id)) == 1:
        return True
    set_video_message(conn, video_id, f"not every quality could be made: {reason}")
    return False
