"""All of watermark-svc's SQL: the job queue, video status, processed media."""
from __future__ import annotations

import json

from svcommon.db import execute, query

CLAIMABLE = ("SELECT id, video_id, kind, attempts, max_attempts, status FROM jobs "
             "WHERE kind = 'process' AND ((status = 'queued' AND run_after <= UTC_TIMESTAMP(6)) "
             "OR (status = 'running' AND lease_expires_at < UTC_TIMESTAMP(6))) "
             "ORDER BY priority DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED")


def next_claimable_job(conn) -> dict | None:
    return query(conn, CLAIMABLE, one=True)


def start_job(conn, job_id: str, worker: str, lease_seconds: int) -> None:
    execute(conn, "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = %s, "
                  "lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, progress = 0, step = 'starting', "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (worker, lease_seconds, job_id))


def renew_lease(conn, job_id: str, worker: str, lease_seconds: int, progress: float, step: str) -> bool:
    n = execute(conn, "UPDATE jobs SET lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, progress = %s, "
                      "step = %s, updated_at = UTC_TIMESTAMP(6) WHERE id = %s AND lease_owner = %s "
                      "AND status = 'running' AND NOT EXISTS (SELECT 1 FROM videos v "
                      "WHERE v.id = jobs.video_id AND v.status = 'deleting')",
                (lease_seconds, progress, step[:64], job_id, worker))
    return n == 1


def finish_job(conn, job_id: str, worker: str) -> bool:
    return execute(conn, "UPDATE jobs SET status = 'done', progress = 100, step = 'done', lease_owner = NULL, "
                         "lease_expires_at = NULL, finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND lease_owner = %s", (job_id, worker)) == 1


def retry_job(conn, job_id: str, error: str, delay_seconds: int) -> None:
    execute(conn, "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, error = %s, "
                  "run_after = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, step = 'waiting to retry', "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (error[:2000], delay_seconds, job_id))


def fail_job(conn, job_id: str, error: str) -> None:
    execute(conn, "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, error = %s, "
                  "step = 'failed', finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
            (error[:2000], job_id))


def video(conn, video_id: str) -> dict | None:
    return query(conn, "SELECT id, status, original_key FROM videos WHERE id = %s", (video_id,), one=True)


def video_gone(conn, video_id: str) -> bool:
    """Deleted, or being deleted: upload-svc commits the 'deleting' mark before it removes
    the video's objects, so objects written before this read are removed by that delete."""
    row = query(conn, "SELECT status FROM videos WHERE id = %s", (video_id,), one=True)
    return row is None or row["status"] == "deleting"


def set_video_status(conn, video_id: str, status: str, message: str) -> None:
    execute(conn, "UPDATE videos SET status = %s, status_message = %s, updated_at = UTC_TIMESTAMP(6) "
                  "WHERE id = %s AND status <> 'deleting'", (status, message[:500], video_id))


def publish_media(conn, video_id: str, meta: dict, thumbnail_key: str, content_secret_enc: bytes) -> bool:
    """False (nothing written) when the video is being deleted or gone. The video row is
    updated first: its lock then keeps it there for the media row's foreign key. The
    segments are stored sealed under ``content_secret_enc``'s secret: delivery v2."""
    if execute(conn, "UPDATE videos SET status = 'ready', status_message = '', thumbnail_key = %s, "
                     "ready_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                     "WHERE id = %s AND status <> 'deleting'", (thumbnail_key, video_id)) != 1:
        return False
    execute(conn, "REPLACE INTO video_media (video_id, segment_count, duration, metadata, content_secret_enc, "
                  "delivery_version) VALUES (%s, %s, %s, %s, %s, 2)",
            (video_id, meta["segment_count"], meta["duration"], json.dumps(meta), content_secret_enc))
    return True


def media_of(conn, video_id: str) -> dict | None:
    row = query(conn, "SELECT metadata FROM video_media WHERE video_id = %s", (video_id,), one=True)
    return json.loads(row["metadata"]) if row else None


# ---------------------------------------------------------------------------------------
# Delivery v1 → v2 conversion (convert.py): one converter per video under a named lock,
# held on its own connection (no row lock is held while file-svc works).
# ---------------------------------------------------------------------------------------
def _convert_lock_name(video_id: str) -> str:
    return f"streamvault.convert.{video_id}"


def try_convert_lock(conn, video_id: str, wait_seconds: float) -> bool:
    row = query(conn, "SELECT GET_LOCK(%s, %s) AS got", (_convert_lock_name(video_id), wait_seconds), one=True)
    return row["got"] == 1


def release_convert_lock(conn, video_id: str) -> None:
    query(conn, "SELECT RELEASE_LOCK(%s) AS released", (_convert_lock_name(video_id),))


def v1_videos(conn, limit: int | None = None) -> list[str]:
    """Videos whose segments are still stored as delivery-v1 plaintext, oldest first."""
    sql = ("SELECT m.video_id FROM video_media m JOIN videos v ON v.id = m.video_id "
           "WHERE m.delivery_version = 1 AND v.status <> 'deleting' ORDER BY v.created_at, v.id")
    return [r["video_id"] for r in query(conn, sql + (" LIMIT %s" if limit else ""), (limit,) if limit else ())]


def media_for_conversion(conn, video_id: str) -> dict | None:
    """None when the video is gone or being deleted (or was never processed)."""
    row = query(conn, "SELECT m.metadata, m.content_secret_enc, m.delivery_version FROM video_media m "
                      "JOIN videos v ON v.id = m.video_id WHERE m.video_id = %s AND v.status <> 'deleting'",
                (video_id,), one=True)
    if row is None:
        return None
    sealed = row["content_secret_enc"]
    return {"meta": json.loads(row["metadata"]), "delivery_version": int(row["delivery_version"]),
            "content_secret_enc": bytes(sealed) if sealed is not None else None}


def store_content_secret(conn, video_id: str, content_secret_enc: bytes) -> bool:
    """Only where none is stored yet: a resumed conversion keeps the secret its stored
    segments are named and sealed under."""
    return execute(conn, "UPDATE video_media m JOIN videos v ON v.id = m.video_id SET m.content_secret_enc = %s "
                         "WHERE m.video_id = %s AND m.delivery_version = 1 AND m.content_secret_enc IS NULL "
                         "AND v.status <> 'deleting'", (content_secret_enc, video_id)) == 1


def mark_delivery_v2(conn, video_id: str, content_secret_enc: bytes) -> bool:
    """False when the video is being deleted or gone (or its secret changed under us)."""
    return execute(conn, "UPDATE video_media m JOIN videos v ON v.id = m.video_id SET m.delivery_version = 2 "
                         "WHERE m.video_id = %s AND m.delivery_version = 1 AND m.content_secret_enc = %s "
                         "AND v.status <> 'deleting'", (video_id, content_secret_enc)) == 1


# ---------------------------------------------------------------------------------------
# Forensics: detections (stored record + work queue), the catalogue, sessions, console.
# ---------------------------------------------------------------------------------------
DETECTION_COLS = ("id, requested_video_id, video_id, status, progress, step, suspect_key, suspect_name, "
                  "suspect_size, suspect_sha256, method, session_id, false_accusation, result, error, "
                  "created_by, attempts, max_attempts, created_at, updated_at, started_at, finished_at")


def insert_detection(conn, row: dict) -> None:
    cols = ", ".join(row)
    execute(conn, f"INSERT INTO detections ({cols}) VALUES ({', '.join(['%s'] * len(row))})",
            tuple(row.values()))


def detection(conn, detection_id: str) -> dict | None:
    return query(conn, f"SELECT {DETECTION_COLS} FROM detections WHERE id = %s", (detection_id,), one=True)


def detections(conn, limit: int, offset: int = 0) -> list[dict]:
    return query(conn, f"SELECT {DETECTION_COLS} FROM detections ORDER BY created_at DESC LIMIT %s OFFSET %s",
                 (limit, offset))


def next_claimable_detection(conn) -> dict | None:
    return query(conn, "SELECT id, requested_video_id, suspect_key, suspect_name, attempts, max_attempts, status "
                       "FROM detections WHERE (status = 'queued' AND run_after <= UTC_TIMESTAMP(6)) "
                       "OR (status = 'running' AND lease_expires_at < UTC_TIMESTAMP(6)) "
                       "ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED", one=True)


def start_detection(conn, detection_id: str, worker: str, lease_seconds: int) -> None:
    execute(conn, "UPDATE detections SET status = 'running', attempts = attempts + 1, lease_owner = %s, "
                  "lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, progress = 0, step = 'starting', "
                  "started_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
            (worker, lease_seconds, detection_id))


def renew_detection(conn, detection_id: str, worker: str, lease_seconds: int, progress: float, step: str) -> bool:
    return execute(conn, "UPDATE detections SET lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, "
                         "progress = %s, step = %s, updated_at = UTC_TIMESTAMP(6) WHERE id = %s AND lease_owner = %s "
                         "AND status = 'running'", (lease_seconds, progress, step[:64], detection_id, worker)) == 1


def finish_detection(conn, detection_id: str, worker: str, result: dict) -> bool:
    match = result.get("match") or {}
    return execute(conn, "UPDATE detections SET status = 'done', progress = 100, step = 'done', video_id = %s, "
                         "method = %s, session_id = %s, false_accusation = %s, result = %s, error = NULL, "
                         "lease_owner = NULL, lease_expires_at = NULL, finished_at = UTC_TIMESTAMP(6), "
                         "updated_at = UTC_TIMESTAMP(6) WHERE id = %s AND lease_owner = %s",
                   (result.get("video_id"), result.get("method_used"), match.get("session_id"),
                    result.get("false_accusation_probability"), json.dumps(result), detection_id, worker)) == 1


def retry_detection(conn, detection_id: str, error: str, delay_seconds: int) -> None:
    execute(conn, "UPDATE detections SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
                  "error = %s, step = 'waiting to retry', run_after = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (error[:2000], delay_seconds, detection_id))


def cancel_detection(conn, detection_id: str) -> bool:
    """queued/running → cancelled; the lease owner's next renewal fails (status check)."""
    return execute(conn, "UPDATE detections SET status = 'cancelled', step = 'cancelled', lease_owner = NULL, "
                         "lease_expires_at = NULL, error = 'cancelled by an administrator', "
                         "finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status IN ('queued', 'running')", (detection_id,)) == 1


def fail_detection(conn, detection_id: str, error: str) -> None:
    execute(conn, "UPDATE detections SET status = 'failed', step = 'failed', lease_owner = NULL, "
                  "lease_expires_at = NULL, error = %s, finished_at = UTC_TIMESTAMP(6), "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (error[:2000], detection_id))


def catalogue_videos(conn) -> list[dict]:
    return query(conn, "SELECT v.id, v.title, v.original_key FROM videos v JOIN video_media m ON m.video_id = v.id "
                       "WHERE v.status = 'ready' ORDER BY v.created_at")


def video_for_forensics(conn, video_id: str) -> dict | None:
    return query(conn, "SELECT v.id, v.title, v.original_key, v.owner_id, v.duration, m.metadata "
                       "FROM videos v JOIN video_media m ON m.video_id = v.id "
                       "WHERE v.id = %s AND v.status <> 'deleting'",
                 (video_id,), one=True)


def session_ids_of_video(conn, video_id: str) -> list[str]:
    return [r["id"] for r in query(conn, "SELECT id FROM playback_sessions WHERE video_id = %s ORDER BY id",
                                   (video_id,))]


def session_video_id(conn, session_id: str) -> str | None:
    row = query(conn, "SELECT video_id FROM playback_sessions WHERE id = %s", (session_id,), one=True)
    return row["video_id"] if row else None


SESSION_DETAIL = ("SELECT s.id AS session_id, s.video_id, s.user_id, u.username, u.email, s.device_id, "
                  "s.ip, s.user_agent AS session_user_agent, s.started_at, s.ended_at, s.expires_at, "
                  "s.last_heartbeat_at, s.codeword_length, s.tag_issued_at, s.key_epoch, s.jkt, "
                  "d.user_agent AS device_user_agent, d.screen, d.timezone, d.language, "
                  "d.first_seen AS device_first_seen, d.last_seen AS device_last_seen, d.last_ip AS device_last_ip, "
                  "d.revoked_at AS device_revoked_at, v.title AS video_title "
                  "FROM playback_sessions s LEFT JOIN users u ON u.id = s.user_id "
                  "LEFT JOIN devices d ON d.id = s.device_id LEFT JOIN videos v ON v.id = s.video_id ")


def session_detail(conn, session_id: str) -> dict | None:
    return query(conn, SESSION_DETAIL + "WHERE s.id = %s", (session_id,), one=True)


def recent_sessions(conn, limit: int) -> list[dict]:
    return query(conn, SESSION_DETAIL + "ORDER BY s.started_at DESC LIMIT %s", (limit,))


def security_events(conn, limit: int, kind: str | None = None) -> list[dict]:
    if kind:
        return query(conn, "SELECT e.id, e.created_at, e.kind, e.service, e.user_id, u.username, e.ip, e.path, "
                           "e.detail FROM security_events e LEFT JOIN users u ON u.id = e.user_id "
                           "WHERE e.kind = %s ORDER BY e.created_at DESC LIMIT %s", (kind, limit))
    return query(conn, "SELECT e.id, e.created_at, e.kind, e.service, e.user_id, u.username, e.ip, e.path, e.detail "
                       "FROM security_events e LEFT JOIN users u ON u.id = e.user_id "
                       "ORDER BY e.created_at DESC LIMIT %s", (limit,))
