"""Seek-preview storyboards (migration 023): one row per video whose sprites are stored,
its geometry as svcommon.storyboards.Storyboard JSON. streaming-svc lists the image track
only when the row exists, so a video without one plays as before."""
from __future__ import annotations

from svcommon.db import execute, query


def store_storyboard(conn, video_id: str, board_json: str) -> bool:
    """False (nothing written) when the video is being deleted, gone or failed. The video
    row stays locked until commit: a delete can mark it only afterwards, and its removal
    of the video's objects then takes the sprites stored before this."""
    row = query(conn, "SELECT status FROM videos WHERE id = %s LOCK IN SHARE MODE", (video_id,), one=True)
    if row is None or row["status"] in ("deleting", "failed"):
        return False
    execute(conn, "INSERT INTO video_storyboards (video_id, metadata) VALUES (%s, %s) "
                  "ON DUPLICATE KEY UPDATE metadata = VALUES(metadata), created_at = UTC_TIMESTAMP(6)",
            (video_id, board_json))
    return True


def has_storyboard(conn, video_id: str) -> bool:
    return query(conn, "SELECT 1 AS x FROM video_storyboards WHERE video_id = %s", (video_id,), one=True) is not None


def drop_storyboard(conn, video_id: str) -> None:
    """A re-planned video's: its sprites were removed with its other outputs."""
    execute(conn, "DELETE FROM video_storyboards WHERE video_id = %s", (video_id,))


def ready_without_storyboard(conn, video_id: str | None = None) -> list[str]:
    """Ready videos (or just ``video_id``) with no storyboard, oldest first: what the
    storyboards command queues."""
    sql = ("SELECT v.id FROM videos v LEFT JOIN video_storyboards s ON s.video_id = v.id "
           "WHERE v.status = 'ready' AND s.video_id IS NULL")
    if video_id:
        return [r["id"] for r in query(conn, sql + " AND v.id = %s", (video_id,))]
    return [r["id"] for r in query(conn, sql + " ORDER BY v.created_at, v.id")]
