"""Delivery v1 → v2 conversion (convert.py): one converter per video under a named lock,
held on its own connection (no row lock is held while file-svc works)."""
from __future__ import annotations

import json

from svcommon.db import execute, query


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
