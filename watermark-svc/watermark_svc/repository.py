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
                      "AND status = 'running'", (lease_seconds, progress, step[:64], job_id, worker))
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


def set_video_status(conn, video_id: str, status: str, message: str) -> None:
    execute(conn, "UPDATE videos SET status = %s, status_message = %s, updated_at = UTC_TIMESTAMP(6) "
                  "WHERE id = %s", (status, message[:500], video_id))


def publish_media(conn, video_id: str, meta: dict, thumbnail_key: str) -> None:
    execute(conn, "REPLACE INTO video_media (video_id, segment_count, duration, metadata) VALUES (%s, %s, %s, %s)",
            (video_id, meta["segment_count"], meta["duration"], json.dumps(meta)))
    execute(conn, "UPDATE videos SET status = 'ready', status_message = '', thumbnail_key = %s, "
                  "ready_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
            (thumbnail_key, video_id))


def media_of(conn, video_id: str) -> dict | None:
    row = query(conn, "SELECT metadata FROM video_media WHERE video_id = %s", (video_id,), one=True)
    return json.loads(row["metadata"]) if row else None
