"""The admin dashboard's figures: counts, storage, views per day, playback quality, the queue,
live sessions.
Each is one aggregate over an indexed column or a small table; nothing is stored for it."""
from __future__ import annotations

from datetime import datetime

from svcommon.db import query


def user_counts(conn) -> list[dict]:
    return query(conn, "SELECT role, disabled, COUNT(*) AS n FROM users GROUP BY role, disabled")


def video_counts(conn) -> list[dict]:
    """Per status: how many (storage() has the bytes)."""
    return query(conn, "SELECT status, COUNT(*) AS n FROM videos GROUP BY status")


def storage(conn) -> dict:
    """Bytes in the store, from sizes the database knows: finished originals, the parts of
    uploads in progress, published media (NULL media_bytes: rows it could not measure) with
    its caption tracks and storyboard sprites, suspects uploaded for forensic detection."""
    return query(conn, "SELECT "
                       "(SELECT COALESCE(SUM(size_bytes), 0) FROM videos WHERE status <> 'uploading') AS originals, "
                       "(SELECT COALESCE(SUM(upload_offset), 0) FROM uploads WHERE status <> 'done') AS uploading, "
                       "(SELECT COALESCE(SUM(media_bytes), 0) FROM video_media) AS media, "
                       "(SELECT COUNT(*) FROM video_media WHERE media_bytes IS NULL) AS media_unmeasured, "
                       "(SELECT COALESCE(SUM(size_bytes), 0) FROM video_captions) AS captions, "
                       "(SELECT COALESCE(SUM(sprite.n), 0) FROM video_storyboards, JSON_TABLE(metadata, "
                       "'$.sprite_bytes[*]' COLUMNS (n BIGINT PATH '$')) AS sprite) AS storyboards, "
                       "(SELECT COALESCE(SUM(suspect_size), 0) FROM detections) AS forensics", one=True)


def sessions_per_day(conn, since: datetime) -> list[dict]:
    """Playback sessions started per UTC day from ``since`` (ix_sessions_started)."""
    return query(conn, "SELECT DATE(started_at) AS day, COUNT(*) AS n FROM playback_sessions "
                       "WHERE started_at >= %s GROUP BY DATE(started_at)", (since,))


def total_views(conn) -> int:
    return int(query(conn, "SELECT COALESCE(SUM(views), 0) AS n FROM videos", one=True)["n"])


def startup_percentiles(conn, since: datetime) -> dict:
    """Startup time (ms, the player's play intent to first frame, as credited by streaming-svc)
    of sessions started since ``since``: {n, p50, p95}, p50/p95 None without any
    (ix_sessions_started; the percentiles are MariaDB's PERCENTILE_CONT over that window)."""
    row = query(conn, "SELECT COUNT(*) OVER () AS n, "
                      "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY startup_ms) OVER () AS p50, "
                      "PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY startup_ms) OVER () AS p95 "
                      "FROM playback_sessions WHERE started_at >= %s AND startup_ms IS NOT NULL LIMIT 1",
                (since,), one=True)
    return row or {"n": 0, "p50": None, "p95": None}


def playing_totals(conn, since: datetime) -> dict:
    """Sessions started since ``since`` that played: how many, their playing time and stalls (ms)."""
    return query(conn, "SELECT COUNT(*) AS plays, COALESCE(SUM(watch_ms), 0) AS watch_ms, "
                       "COALESCE(SUM(rebuffer_ms), 0) AS rebuffer_ms, COALESCE(SUM(rebuffer_count), 0) AS stalls "
                       "FROM playback_sessions WHERE started_at >= %s AND watch_ms > 0", (since,), one=True)


def live_sessions(conn, now: datetime) -> int:
    """Playback sessions in progress (ix_sessions_live)."""
    return query(conn, "SELECT COUNT(*) AS n FROM playback_sessions WHERE ended_at IS NULL AND expires_at > %s",
                 (now,), one=True)["n"]


def queue_counts(conn, done_since: datetime) -> list[dict]:
    """Per job kind: queued (of which waiting to retry after a failure), running and dead
    jobs, and those done since ``done_since`` (done rows stay for the record: not all of them)."""
    return query(conn, "SELECT kind, SUM(status = 'queued') AS queued, "
                       "SUM(status = 'queued' AND attempts > 0) AS retrying, SUM(status = 'running') AS running, "
                       "SUM(status = 'dead') AS dead, SUM(status = 'done') AS done FROM jobs "
                       "WHERE status IN ('queued', 'running', 'dead') OR (status = 'done' AND updated_at >= %s) "
                       "GROUP BY kind ORDER BY kind", (done_since,))


def subject_titles(conn, subjects: list[str]) -> dict[str, str]:
    """Titles of the videos (or the suspect file names of the detections) jobs are about."""
    ids = sorted({s for s in subjects if s})
    if not ids:
        return {}
    marks = ", ".join(["%s"] * len(ids))
    rows = query(conn, f"SELECT id, title FROM videos WHERE id IN ({marks}) UNION ALL "
                       f"SELECT id, suspect_name AS title FROM detections WHERE id IN ({marks})", (*ids, *ids))
    return {r["id"]: r["title"] for r in rows}
