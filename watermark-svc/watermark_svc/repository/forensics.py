"""Forensics: detection records (their work runs as 'detection.run' queue jobs), the
catalogue, the sessions a trace reads."""
from __future__ import annotations

import json

from svcommon.db import execute, query


# While its job runs, progress and step are the job's (the lease publishes them there).
DETECTION_COLS = ("d.id, d.requested_video_id, d.video_id, d.status, COALESCE(j.progress, d.progress) AS progress, "
                  "COALESCE(j.step, d.step) AS step, d.suspect_key, d.suspect_name, d.suspect_size, "
                  "d.suspect_sha256, d.method, d.session_id, d.false_accusation, d.result, d.error, d.created_by, "
                  "d.created_at, d.updated_at, d.started_at, d.finished_at")
DETECTION_FROM = ("FROM detections d LEFT JOIN jobs j ON j.subject = d.id AND j.kind = 'detection.run' "
                  "AND j.status = 'running' AND d.status = 'running'")


def insert_detection(conn, row: dict) -> None:
    cols = ", ".join(row)
    execute(conn, f"INSERT INTO detections ({cols}) VALUES ({', '.join(['%s'] * len(row))})",
            tuple(row.values()))


def detection(conn, detection_id: str) -> dict | None:
    return query(conn, f"SELECT {DETECTION_COLS} {DETECTION_FROM} WHERE d.id = %s", (detection_id,), one=True)


def detections(conn, limit: int, offset: int = 0) -> list[dict]:
    return query(conn, f"SELECT {DETECTION_COLS} {DETECTION_FROM} ORDER BY d.created_at DESC LIMIT %s OFFSET %s",
                 (limit, offset))


def start_detection(conn, detection_id: str) -> bool:
    """queued (or running: a retry after a lapsed lease) → running; False once cancelled."""
    return execute(conn, "UPDATE detections SET status = 'running', step = 'starting', "
                         "started_at = COALESCE(started_at, UTC_TIMESTAMP(6)), updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status IN ('queued', 'running')", (detection_id,)) == 1


def detection_active(conn, detection_id: str) -> bool:
    """The lease guard: a cancelled detection stops its worker."""
    row = query(conn, "SELECT status FROM detections WHERE id = %s", (detection_id,), one=True)
    return row is not None and row["status"] in ("queued", "running")


def detection_waiting(conn, detection_id: str, note: str) -> None:
    execute(conn, "UPDATE detections SET status = 'queued', step = 'waiting to retry', error = %s, "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s AND status <> 'cancelled'", (note[:2000], detection_id))


def finish_detection(conn, detection_id: str, result: dict) -> bool:
    match = result.get("match") or {}
    return execute(conn, "UPDATE detections SET status = 'done', progress = 100, step = 'done', video_id = %s, "
                         "method = %s, session_id = %s, false_accusation = %s, result = %s, error = NULL, "
                         "finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status = 'running'",
                   (result.get("video_id"), result.get("method_used"), match.get("session_id"),
                    result.get("false_accusation_probability"), json.dumps(result), detection_id)) == 1


def cancel_detection(conn, detection_id: str) -> bool:
    """queued/running → cancelled; the running job's lease guard then fails (its worker stops)."""
    return execute(conn, "UPDATE detections SET status = 'cancelled', step = 'cancelled', "
                         "error = 'cancelled by an administrator', "
                         "finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status IN ('queued', 'running')", (detection_id,)) == 1


def fail_detection(conn, detection_id: str, error: str) -> None:
    execute(conn, "UPDATE detections SET status = 'failed', step = 'failed', error = %s, "
                  "finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                  "WHERE id = %s AND status <> 'cancelled'", (error[:2000], detection_id))


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


SESSION_DETAIL = ("SELECT s.id AS session_id, s.video_id, s.user_id, u.username, u.email, "
                  "u.disabled AS user_disabled, s.device_id, s.end_reason, "
                  "s.ip, s.user_agent AS session_user_agent, s.started_at, s.ended_at, s.expires_at, "
                  "s.last_heartbeat_at, s.codeword_length, s.tag_issued_at, s.key_epoch, s.jkt, "
                  "d.user_agent AS device_user_agent, d.screen, d.timezone, d.language, "
                  "d.first_seen AS device_first_seen, d.last_seen AS device_last_seen, d.last_ip AS device_last_ip, "
                  "d.revoked_at AS device_revoked_at, v.title AS video_title "
                  "FROM playback_sessions s LEFT JOIN users u ON u.id = s.user_id "
                  "LEFT JOIN devices d ON d.id = s.device_id LEFT JOIN videos v ON v.id = s.video_id ")


def session_detail(conn, session_id: str) -> dict | None:
    return query(conn, SESSION_DETAIL + "WHERE s.id = %s", (session_id,), one=True)
