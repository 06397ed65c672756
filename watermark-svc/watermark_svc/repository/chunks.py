"""Chunked processing (migration 014): a video's encode plan, its chunks' results, its audio.
Every completion locks the plan row first (``lock_encode``), so the one that completes a
rung sees every other chunk's result and publishes it in the same transaction."""
from __future__ import annotations

import json
from dataclasses import dataclass

from svcommon.db import execute, query


@dataclass(frozen=True)
class EncodeRow:
    """A video's plan row: the plan (encode_state.EncodeState's JSON), its sealed content
    secret, the audio's result (None until the audio job is done)."""
    plan: dict
    sealed: bytes
    audio: dict | None


def start_encode(conn, video_id: str, plan: dict, sealed: bytes, chunks: list[tuple[str, int]]) -> None:
    """A fresh plan (a re-run of planning replaces an older one and its chunk rows)."""
    execute(conn, "DELETE FROM video_encodes WHERE video_id = %s", (video_id,))
    execute(conn, "INSERT INTO video_encodes (video_id, plan, content_secret_enc) VALUES (%s, %s, %s)",
            (video_id, json.dumps(plan), sealed))
    for rung, index in chunks:
        execute(conn, "INSERT INTO video_chunks (video_id, rung, chunk_index) VALUES (%s, %s, %s)",
                (video_id, rung, index))


def encode_of(conn, video_id: str) -> EncodeRow | None:
    row = query(conn, "SELECT plan, content_secret_enc, audio FROM video_encodes WHERE video_id = %s",
                (video_id,), one=True)
    return _encode(row)


def lock_encode(conn, video_id: str) -> EncodeRow | None:
    row = query(conn, "SELECT plan, content_secret_enc, audio FROM video_encodes WHERE video_id = %s FOR UPDATE",
                (video_id,), one=True)
    return _encode(row)


def _encode(row: dict | None) -> EncodeRow | None:
    if row is None:
        return None
    return EncodeRow(json.loads(row["plan"]), bytes(row["content_secret_enc"]),
                     json.loads(row["audio"]) if row["audio"] else None)


def count_encode(conn, video_id: str, rung: str, index: int, worker: str) -> bool:
    """A chunk's encoding starts; False when it is done already (or its plan is gone)."""
    return execute(conn, "UPDATE video_chunks SET encodes = encodes + 1, encoded_by = %s WHERE video_id = %s "
                         "AND rung = %s AND chunk_index = %s AND result IS NULL",
                   (worker[:128], video_id, rung, index)) == 1


def finish_chunk(conn, video_id: str, rung: str, index: int, result: dict) -> bool:
    return execute(conn, "UPDATE video_chunks SET result = %s, done_at = UTC_TIMESTAMP(6) WHERE video_id = %s "
                         "AND rung = %s AND chunk_index = %s AND result IS NULL",
                   (json.dumps(result), video_id, rung, index)) == 1


def finish_audio(conn, video_id: str, audio: dict) -> bool:
    return execute(conn, "UPDATE video_encodes SET audio = %s WHERE video_id = %s",
                   (json.dumps(audio), video_id)) == 1


def done_counts(conn, video_id: str) -> dict[str, int]:
    """Done chunks per rung (what a completion needs to know; no result is parsed)."""
    return {r["rung"]: int(r["n"]) for r in query(conn, "SELECT rung, COUNT(result) AS n FROM video_chunks "
                                                        "WHERE video_id = %s GROUP BY rung", (video_id,))}


def chunk_rows(conn, video_id: str) -> list[dict]:
    rows = query(conn, "SELECT rung, chunk_index, encodes, encoded_by, result FROM video_chunks WHERE video_id = %s "
                       "ORDER BY rung, chunk_index", (video_id,))
    for r in rows:
        r["result"] = json.loads(r["result"]) if r["result"] else None
    return rows

