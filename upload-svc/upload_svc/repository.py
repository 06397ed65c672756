"""All of upload-svc's SQL. Functions take a connection; callers own the transaction."""
from __future__ import annotations

import json

from svcommon import jobqueue
from svcommon.db import execute, lock_for_count, query

VIDEO_COLS = ("v.id, v.owner_id, v.title, v.description, v.visibility, v.password_hash, v.status, v.status_message, "
              "v.original_key, v.original_filename, v.content_type, v.size_bytes, v.duration, v.width, v.height, "
              "v.video_codec, v.audio_codec, v.container, v.thumbnail_key, v.views, v.created_at, v.updated_at, "
              "v.ready_at, v.downloads_allowed")
# Progress comes from the upload while bytes arrive; while processing (until the video is
# playable) it is the mean progress of the video's jobs at their highest priority: the
# planning job alone at first, then the jobs that make the video playable (audio and the
# lowest rung's chunks run above the higher rungs: watermark_svc.encode_state), done ones
# at 100. The step shown is the newest job's. work_progress is the mean over all of its
# jobs that may still finish (every rung: what a ready video's growing ladder shows) and
# work_open counts those still to run.
PROGRESS_COLS = ("u.upload_offset, u.upload_length, "
                 "(SELECT AVG(j.progress) FROM jobs j WHERE j.subject = v.id AND j.priority = "
                 "(SELECT MAX(k.priority) FROM jobs k WHERE k.subject = v.id)) AS job_progress, "
                 "(SELECT j.step FROM jobs j WHERE j.subject = v.id ORDER BY j.created_at DESC LIMIT 1) AS job_step, "
                 "(SELECT AVG(j.progress) FROM jobs j WHERE j.subject = v.id AND j.status <> 'dead') AS work_progress, "
                 "(SELECT COUNT(*) FROM jobs j WHERE j.subject = v.id AND j.status IN ('queued', 'running')) "
                 "AS work_open")
VIDEO_FROM = "FROM videos v LEFT JOIN uploads u ON u.video_id = v.id"


# ---- videos ------------------------------------------------------------------------------
def insert_video(conn, v: dict) -> None:
    execute(conn, "INSERT INTO videos (id, owner_id, title, description, visibility, password_hash, status, "
                  "original_key, original_filename, content_type, size_bytes) "
                  "VALUES (%s, %s, %s, %s, %s, %s, 'uploading', %s, %s, %s, %s)",
            (v["id"], v["owner_id"], v["title"], v["description"], v["visibility"], v["password_hash"],
             v["original_key"], v["original_filename"], v["content_type"], v["size_bytes"]))


def video(conn, video_id: str, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    return query(conn, f"SELECT {VIDEO_COLS}, {PROGRESS_COLS} {VIDEO_FROM} WHERE v.id = %s{lock}",
                 (video_id,), one=True)


def videos_of(conn, owner_id: str, limit: int = 500) -> list[dict]:
    return query(conn, f"SELECT {VIDEO_COLS}, {PROGRESS_COLS} {VIDEO_FROM} WHERE v.owner_id = %s "
                       "ORDER BY v.created_at DESC LIMIT %s", (owner_id, limit))


def update_video_meta(conn, video_id: str, fields: dict) -> None:
    allowed = ("title", "description", "visibility", "password_hash", "downloads_allowed")
    sets = [f"{k} = %s" for k in fields if k in allowed]
    params = [fields[k] for k in fields if k in allowed]
    execute(conn, f"UPDATE videos SET {', '.join(sets + ['updated_at = UTC_TIMESTAMP(6)'])} WHERE id = %s",
            (*params, video_id))


def revoke_grants(conn, video_id: str) -> None:
    execute(conn, "DELETE FROM video_access_grants WHERE video_id = %s", (video_id,))


def end_viewer_sessions(conn, video_id: str, owner_id: str) -> int:
    """Ends every open playback session of the video whose user is neither its owner nor an
    admin (streaming-svc answers them 403 access_revoked). Returns how many."""
    return execute(conn, "UPDATE playback_sessions s JOIN users u ON u.id = s.user_id "
                         "SET s.ended_at = UTC_TIMESTAMP(6), s.end_reason = 'access_revoked' "
                         "WHERE s.video_id = %s AND s.ended_at IS NULL AND s.user_id <> %s AND u.role <> 'admin'",
                   (video_id, owner_id))


def mark_probed(conn, video_id: str, size: int, info: dict) -> bool:
    """False when the video is being deleted (or gone): it must not be queued again."""
    return execute(conn, "UPDATE videos SET status = 'queued', status_message = 'waiting for processing', "
                         "size_bytes = %s, duration = %s, width = %s, height = %s, video_codec = %s, "
                         "audio_codec = %s, container = %s, updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status <> 'deleting'",
                   (size, info["duration"], info["width"], info["height"], info["video_codec"],
                    info["audio_codec"], info["container"], video_id)) == 1


def mark_deleting(conn, video_id: str) -> None:
    """The first step of a delete, committed at once: from here every reader (library,
    sessions, the worker) treats the video as gone, so its objects can be removed without
    holding the row across the calls to file-svc."""
    execute(conn, "UPDATE videos SET status = 'deleting', status_message = 'being deleted', "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (video_id,))


def delete_video(conn, video_id: str) -> int:
    # uploads go with it (ON DELETE CASCADE); queue jobs name it as their subject (no foreign key)
    jobqueue.forget(conn, video_id)
    return execute(conn, "DELETE FROM videos WHERE id = %s", (video_id,))


def quota_usage(conn, owner_id: str) -> dict | None:
    """The user's role, own quota (NULL = the default) and bytes used: stored plus reserved
    (an upload in progress counts at its full announced length)."""
    return query(conn, "SELECT u.role, u.upload_quota_bytes, "
                       "(SELECT COALESCE(SUM(v.size_bytes), 0) FROM videos v WHERE v.owner_id = u.id) AS used "
                       "FROM users u WHERE u.id = %s", (owner_id,), one=True)


def reserve_size(conn, video_id: str, size: int) -> None:
    """A streamed upload of unannounced length reserves what it turned out to be."""
    execute(conn, "UPDATE videos SET size_bytes = %s, updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (size, video_id))


def lock_owner(conn, owner_id: str) -> bool:
    """Serialise quota checks of one user across replicas (released by unlock_owner). The
    caller has nothing uncommitted: the transaction is ended first, so the reads after the
    lock get a fresh snapshot and see every reservation committed before it (a snapshot taken
    earlier in the request, by the account check say, would miss the other upload's)."""
    conn.rollback()
    return query(conn, "SELECT GET_LOCK(%s, 10) AS ok", (f"sv_quota_{owner_id}",), one=True)["ok"] == 1


def unlock_owner(conn, owner_id: str) -> None:
    query(conn, "SELECT RELEASE_LOCK(%s) AS ok", (f"sv_quota_{owner_id}",))


def lock_completion(conn, upload_id: str) -> bool:
    """Try (without waiting) the named lock of a tus upload's completion. The request that
    finishes an upload holds it; MariaDB releases it when that request's connection dies, so
    a resume tells a finisher at work (busy: nothing to do) from one that was killed (free:
    finish its work). No row stays locked across the calls to file-svc and the probe. The
    transaction is ended first, so what is read next is what the last finisher committed."""
    conn.rollback()
    return query(conn, "SELECT GET_LOCK(%s, 0) AS ok", (f"sv_tus_done_{upload_id}",), one=True)["ok"] == 1


def unlock_completion(conn, upload_id: str) -> None:
    query(conn, "SELECT RELEASE_LOCK(%s) AS ok", (f"sv_tus_done_{upload_id}",))


def user_active(conn, user_id: str) -> bool:
    row = query(conn, "SELECT disabled FROM users WHERE id = %s", (user_id,), one=True)
    return row is not None and not row["disabled"]


# ---- progress streams (streams.py) ------------------------------------------------------
def lock_user_row(conn, user_id: str) -> None:
    """In a new transaction: svcommon.db.lock_for_count."""
    lock_for_count(conn, "SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))


# Only plain reads and primary-key writes here: a locking range read on (user_id, ...) would
# take gap locks that deadlock with other users' inserts. The user row lock serialises.
def drop_lapsed_streams(conn, user_id: str) -> None:
    rows = query(conn, "SELECT id FROM event_streams WHERE user_id = %s AND lease_until < UTC_TIMESTAMP(6)",
                 (user_id,))
    for row in rows:
        execute(conn, "DELETE FROM event_streams WHERE id = %s", (row["id"],))


def open_streams(conn, user_id: str) -> int:
    """Call with the user row locked, in a transaction whose first plain read comes after
    the lock (so it sees every stream committed by earlier lock holders)."""
    return query(conn, "SELECT COUNT(*) AS n FROM event_streams WHERE user_id = %s AND lease_until >= "
                       "UTC_TIMESTAMP(6)", (user_id,), one=True)["n"]


def insert_stream(conn, stream_id: str, user_id: str, lease_seconds: int) -> None:
    execute(conn, "INSERT INTO event_streams (id, user_id, lease_until) "
                  "VALUES (%s, %s, UTC_TIMESTAMP(6) + INTERVAL %s SECOND)", (stream_id, user_id, lease_seconds))


def renew_stream(conn, stream_id: str, lease_seconds: int) -> None:
    execute(conn, "UPDATE event_streams SET lease_until = UTC_TIMESTAMP(6) + INTERVAL %s SECOND WHERE id = %s",
            (lease_seconds, stream_id))


def delete_stream(conn, stream_id: str) -> None:
    execute(conn, "DELETE FROM event_streams WHERE id = %s", (stream_id,))


# ---- tus uploads -------------------------------------------------------------------------
UPLOAD_COLS = ("id, video_id, owner_id, upload_length, upload_offset, metadata, object_key, s3_upload_id, part_size, "
               "parts, tail_key, tail_size, status, lock_token, lock_expires_at, expires_at, created_at")


def insert_upload(conn, u: dict) -> None:
    execute(conn, "INSERT INTO uploads (id, video_id, owner_id, upload_length, metadata, object_key, s3_upload_id, "
                  "part_size, parts, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '[]', "
                  "UTC_TIMESTAMP(6) + INTERVAL %s HOUR)",
            (u["id"], u["video_id"], u["owner_id"], u["upload_length"], json.dumps(u["metadata"]), u["object_key"],
             u["s3_upload_id"], u["part_size"], u["expiry_hours"]))


def upload(conn, upload_id: str, for_update: bool = False) -> dict | None:
    row = query(conn, f"SELECT {UPLOAD_COLS} FROM uploads WHERE id = %s" + (" FOR UPDATE" if for_update else ""),
                (upload_id,), one=True)
    if row:
        row["parts"] = json.loads(row["parts"])
        row["metadata"] = json.loads(row["metadata"])
    return row


def take_lease(conn, upload_id: str, token: str, seconds: int) -> bool:
    n = execute(conn, "UPDATE uploads SET lock_token = %s, lock_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND "
                      "WHERE id = %s AND status = 'receiving' "
                      "AND (lock_token IS NULL OR lock_expires_at < UTC_TIMESTAMP(6))", (token, seconds, upload_id))
    return n == 1


def renew_lease(conn, upload_id: str, token: str, seconds: int) -> bool:
    n = execute(conn, "UPDATE uploads SET lock_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND "
                      "WHERE id = %s AND lock_token = %s", (seconds, upload_id, token))
    return n == 1


def release_lease(conn, upload_id: str, token: str) -> None:
    execute(conn, "UPDATE uploads SET lock_token = NULL, lock_expires_at = NULL WHERE id = %s AND lock_token = %s",
            (upload_id, token))


def save_progress(conn, upload_id: str, token: str, offset: int, parts: list[dict], tail_key: str | None,
                  tail_size: int, lease_seconds: int, expiry_hours: int, status: str = "receiving") -> bool:
    """Record durable bytes, only while we still hold the lease (else someone took over)."""
    n = execute(conn, "UPDATE uploads SET upload_offset = %s, parts = %s, tail_key = %s, tail_size = %s, status = %s, "
                      "lock_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, updated_at = UTC_TIMESTAMP(6), "
                      "expires_at = UTC_TIMESTAMP(6) + INTERVAL %s HOUR WHERE id = %s AND lock_token = %s",
                (offset, json.dumps(parts), tail_key, tail_size, status, lease_seconds, expiry_hours, upload_id, token))
    return n == 1


def mark_upload_done(conn, upload_id: str) -> bool:
    """completing → done (False: not completing any more, finished by another request)."""
    return execute(conn, "UPDATE uploads SET status = 'done', parts = '[]', tail_key = NULL, tail_size = 0, "
                         "lock_token = NULL, lock_expires_at = NULL, updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status = 'completing'", (upload_id,)) == 1


def expired_uploads(conn, limit: int = 20) -> list[dict]:
    return query(conn, "SELECT id, video_id, object_key, s3_upload_id, status FROM uploads WHERE status <> 'done' "
                       "AND expires_at < UTC_TIMESTAMP(6) AND (lock_token IS NULL OR lock_expires_at < UTC_TIMESTAMP(6)) "
                       "LIMIT %s", (limit,))


def upload_for_video(conn, video_id: str) -> dict | None:
    row = query(conn, "SELECT id FROM uploads WHERE video_id = %s", (video_id,), one=True)
    return upload(conn, row["id"]) if row else None


def mark_failed(conn, video_id: str, message: str) -> None:
    execute(conn, "UPDATE videos SET status = 'failed', status_message = %s, updated_at = UTC_TIMESTAMP(6) "
                  "WHERE id = %s", (message[:500], video_id))


# ---- caption tracks -----------------------------------------------------------------------
CAPTION_COLS = "id, video_id, lang, label, object_key, source_format, cue_count, size_bytes, created_at"


def captions_of(conn, video_id: str) -> list[dict]:
    return query(conn, f"SELECT {CAPTION_COLS} FROM video_captions WHERE video_id = %s ORDER BY lang",
                 (video_id,))


def caption(conn, video_id: str, caption_id: str) -> dict | None:
    return query(conn, f"SELECT {CAPTION_COLS} FROM video_captions WHERE id = %s AND video_id = %s",
                 (caption_id, video_id), one=True)


def insert_caption(conn, c: dict) -> None:
    execute(conn, "INSERT INTO video_captions (id, video_id, lang, label, object_key, source_format, cue_count, "
                  "size_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (c["id"], c["video_id"], c["lang"], c["label"], c["object_key"], c["source_format"], c["cue_count"],
             c["size_bytes"]))


def delete_caption(conn, caption_id: str) -> int:
    return execute(conn, "DELETE FROM video_captions WHERE id = %s", (caption_id,))
# ---- analytics (streaming-svc writes the figures: playback_sessions, migration 020) -------
RETENTION_SLICES = 20       # watched_mask: bit i = the slice [5i %, 5i + 5 %) of the video was watched


def video_analytics(conn, video_id: str, owner_id: str) -> dict:
    """Over the sessions of others that played (the owner's own never count): how many, the
    playing time credited, stalls, and per 5 % slice how many of them watched it
    (ix_sessions_video)."""
    slices = ", ".join(f"SUM(watched_mask >> {i} & 1) AS slice_{i}" for i in range(RETENTION_SLICES))
    return query(conn, f"SELECT COUNT(*) AS plays, COALESCE(SUM(watch_ms), 0) AS watch_ms, "
                       f"COALESCE(SUM(rebuffer_ms), 0) AS rebuffer_ms, SUM(counted_view) AS counted, {slices} "
                       "FROM playback_sessions WHERE video_id = %s AND user_id <> %s AND watch_ms > 0",
                 (video_id, owner_id), one=True)
