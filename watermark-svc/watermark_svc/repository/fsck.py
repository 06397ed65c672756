"""SQL of the consistency checker (watermark_svc.fsck): what the database says should be in
the store, and the states nothing will ever move. Every "stuck" query judges in one
statement (a consistent read), and only rows untouched for ``grace`` seconds: work in
flight is never a finding."""
from __future__ import annotations

from svcommon.db import execute, query

AGO = "UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND"      # bound to int(grace * 1e6)


def _us(seconds: float) -> int:
    return int(seconds * 1e6)


def db_now(conn):
    """The database's clock (UTC): ages are judged against it, as the rows' times are its own."""
    return query(conn, "SELECT UTC_TIMESTAMP(6) AS now", one=True)["now"]


def videos(conn) -> dict[str, dict]:
    """Every video row with what it references in the store (status, original, thumbnail)."""
    rows = query(conn, "SELECT v.id, v.status, v.original_key, v.thumbnail_key, v.updated_at, "
                       "u.status AS upload_status, u.tail_key, u.s3_upload_id, u.object_key AS upload_key "
                       "FROM videos v LEFT JOIN uploads u ON u.video_id = v.id")
    return {r["id"]: r for r in rows}


def published_media(conn) -> list[dict]:
    return query(conn, "SELECT m.video_id, m.metadata, m.content_secret_enc, m.delivery_version "
                       "FROM video_media m JOIN videos v ON v.id = m.video_id WHERE v.status = 'ready'")


def caption_keys(conn) -> dict[str, dict]:
    return {r["object_key"]: r for r in query(conn, "SELECT id, video_id, object_key, created_at FROM video_captions")}


def storyboards(conn) -> list[dict]:
    return query(conn, "SELECT s.video_id, s.metadata FROM video_storyboards s "
                       "JOIN videos v ON v.id = s.video_id WHERE v.status = 'ready'")


def detections(conn) -> dict[str, dict]:
    return {r["id"]: r for r in query(conn, "SELECT id, status, suspect_key FROM detections")}


def live_upload_ids(conn) -> set[str]:
    """S3 multipart uploads a tus upload still owns (any state but done)."""
    return {r["s3_upload_id"] for r in query(conn, "SELECT s3_upload_id FROM uploads WHERE status <> 'done'")}


def stale_leases(conn, grace: float) -> list[dict]:
    """Running jobs whose lease lapsed ``grace`` ago and that no worker took over."""
    return query(conn, f"SELECT id, kind, subject, attempts, max_attempts, lease_owner, lease_expires FROM jobs "
                       f"WHERE status = 'running' AND lease_expires < {AGO}", (_us(grace),))


def orphan_jobs(conn, video_kinds: tuple[str, ...], detection_kind: str, grace: float) -> list[dict]:
    """Waiting or lapsed jobs whose video or detection no longer exists (a live lease is never
    listed: its worker finds out at its next renewal)."""
    marks = ", ".join(["%s"] * len(video_kinds))
    return query(conn, "SELECT j.id, j.kind, j.subject, j.status FROM jobs j "
                       "WHERE (j.status = 'queued' OR (j.status = 'running' AND j.lease_expires < UTC_TIMESTAMP(6))) "
                       f"AND j.updated_at < {AGO} AND ("
                       f"(j.kind IN ({marks}) AND NOT EXISTS (SELECT 1 FROM videos v WHERE v.id = j.subject)) OR "
                       "(j.kind = %s AND NOT EXISTS (SELECT 1 FROM detections d WHERE d.id = j.subject)))",
                 (_us(grace), *video_kinds, detection_kind))


def delete_job_if_idle(conn, job_id: str) -> bool:
    return execute(conn, "DELETE FROM jobs WHERE id = %s AND (status = 'queued' OR "
                         "(status = 'running' AND lease_expires < UTC_TIMESTAMP(6)))", (job_id,)) == 1


def stuck_videos(conn, grace: float) -> list[dict]:
    """Videos queued or processing with no job left to move them, and deletes that stopped
    half-way ('deleting' for longer than ``grace``)."""
    return query(conn, "SELECT v.id, v.status, v.updated_at FROM videos v WHERE v.updated_at < " + AGO + " AND ("
                       "v.status = 'deleting' OR (v.status IN ('queued', 'processing') AND NOT EXISTS ("
                       "SELECT 1 FROM jobs j WHERE j.subject = v.id AND j.status IN ('queued', 'running'))))",
                 (_us(grace),))


def abandoned_uploads(conn, grace: float) -> list[dict]:
    """tus uploads past their Upload-Expires with no writer (a sweep runs only when someone
    uploads), and videos still 'uploading' with no tus upload (a POST upload whose process
    died) untouched for ``grace``."""
    return query(conn, "SELECT v.id AS video_id, u.id AS upload_id, u.object_key, u.s3_upload_id, u.status "
                       "FROM videos v LEFT JOIN uploads u ON u.video_id = v.id "
                       "WHERE v.status = 'uploading' AND ("
                       "(u.id IS NOT NULL AND u.status <> 'done' AND u.expires_at < UTC_TIMESTAMP(6) "
                       " AND (u.lock_token IS NULL OR u.lock_expires_at < UTC_TIMESTAMP(6))) "
                       f"OR (u.id IS NULL AND v.updated_at < {AGO}))", (_us(grace),))


def mark_deleting(conn, video_id: str) -> None:
    execute(conn, "UPDATE videos SET status = 'deleting', updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (video_id,))


def delete_video(conn, video_id: str) -> None:
    """The rows of a video whose objects are gone (its other rows cascade; its jobs have no
    foreign key)."""
    execute(conn, "DELETE FROM jobs WHERE subject = %s", (video_id,))
    execute(conn, "DELETE FROM videos WHERE id = %s", (video_id,))


def stuck_detections(conn, grace: float, kind: str) -> list[dict]:
    return query(conn, f"SELECT d.id, d.status FROM detections d WHERE d.status IN ('queued', 'running') "
                       f"AND d.updated_at < {AGO} AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.subject = d.id "
                       "AND j.kind = %s AND j.status IN ('queued', 'running'))", (_us(grace), kind))


def fail_detection(conn, detection_id: str, reason: str) -> bool:
    return execute(conn, "UPDATE detections SET status = 'failed', error = %s, finished_at = UTC_TIMESTAMP(6), "
                         "updated_at = UTC_TIMESTAMP(6) WHERE id = %s AND status IN ('queued', 'running')",
                   (reason, detection_id)) == 1


def delete_caption(conn, caption_id: str) -> None:
    execute(conn, "DELETE FROM video_captions WHERE id = %s", (caption_id,))


def delete_storyboard(conn, video_id: str) -> None:
    execute(conn, "DELETE FROM video_storyboards WHERE video_id = %s", (video_id,))


def expired_grants(conn, grace: float) -> list[dict]:
    return query(conn, f"SELECT user_id, video_id, expires_at FROM video_access_grants WHERE expires_at < {AGO}",
                 (_us(grace),))


def delete_grant(conn, user_id: str, video_id: str) -> None:
    execute(conn, "DELETE FROM video_access_grants WHERE user_id = %s AND video_id = %s AND expires_at < "
                  "UTC_TIMESTAMP(6)", (user_id, video_id))


def expired_tickets(conn, grace: float) -> list[dict]:
    """Download tickets never used and expired: their hash can only be cleared (issued_at stays,
    so the per-session and per-hour limits still count them)."""
    return query(conn, "SELECT id, video_id, download_expires_at FROM playback_sessions "
                       "WHERE download_ticket_sha256 IS NOT NULL AND download_used_at IS NULL "
                       f"AND download_expires_at < {AGO}", (_us(grace),))


def clear_ticket(conn, session_id: str) -> None:
    execute(conn, "UPDATE playback_sessions SET download_ticket_sha256 = NULL WHERE id = %s "
                  "AND download_used_at IS NULL AND download_expires_at < UTC_TIMESTAMP(6)", (session_id,))
