"""The catalogue index in MariaDB (migration 027): one row per (signature key, video,
window), looked up by key, so a trace's candidate search costs its hits, not the catalogue.

Written when a video's forensic reference is stored (dbcatalogue.store_reference) and, for a
video processed before the index existed (or under an older SIGNATURE_VERSION), by the next
trace (DbCatalogue.ensure_indexed). Rows go with their video (ON DELETE CASCADE); a lookup
only returns ready videos, so a video being deleted is no candidate.
"""
from __future__ import annotations

import logging

import numpy as np
from mysql.connector import errors as myerrors

from svcommon.db import execute, query

from .index import IndexHits
from .signatures import SIGNATURE_VERSION, Signatures

log = logging.getLogger("watermark.forensics")
INSERT_BATCH = 2000         # rows per INSERT statement
LOOKUP_BATCH = 2000         # keys per SELECT ... IN (...)


def store(db, video_id: str, sig: Signatures) -> bool:
    """Replace the video's rows with `sig` (one transaction). False if the video is gone
    (its row deleted meanwhile: the foreign key refuses) or another writer held the rows."""
    rows = sorted({(int(k), video_id, int(w)) for k, w in zip(sig.keys, sig.windows)})
    with db.standalone() as conn:
        try:
            execute(conn, "DELETE FROM forensic_signatures WHERE video_id = %s", (video_id,))
            for i in range(0, len(rows), INSERT_BATCH):
                batch = rows[i:i + INSERT_BATCH]
                execute(conn, "INSERT IGNORE INTO forensic_signatures (hash_key, video_id, window_no) VALUES "
                        + ", ".join(["(%s, %s, %s)"] * len(batch)), tuple(v for r in batch for v in r))
            windows = int(sig.windows.max()) + 1 if len(sig.windows) else 0
            execute(conn, "INSERT INTO forensic_indexed_videos (video_id, version, windows) VALUES (%s, %s, %s) "
                          "ON DUPLICATE KEY UPDATE version = VALUES(version), windows = VALUES(windows), "
                          "indexed_at = UTC_TIMESTAMP(6)", (video_id, SIGNATURE_VERSION, windows))
            conn.commit()
            return True
        except myerrors.DatabaseError as exc:
            conn.rollback()
            # 1452: the video row is gone; 1213/1205: a concurrent writer of the same rows.
            if getattr(exc, "errno", None) in (1452, 1213, 1205):
                log.info("forensic index rows not written", extra={"video_id": video_id, "error": str(exc)})
                return False
            raise


def unindexed(db) -> list[str]:
    """Ready videos with a forensic reference possible but no index rows of this version."""
    with db.standalone() as conn:
        rows = query(conn, "SELECT v.id FROM videos v JOIN video_media m ON m.video_id = v.id "
                           "LEFT JOIN forensic_indexed_videos i ON i.video_id = v.id AND i.version = %s "
                           "WHERE v.status = 'ready' AND i.video_id IS NULL ORDER BY v.created_at",
                     (SIGNATURE_VERSION,))
    return [r["id"] for r in rows]


def lookup(db, keys: np.ndarray) -> IndexHits:
    """Every row of a ready video whose key is among `keys`."""
    wanted = [int(k) for k in np.unique(keys)]
    out: list[tuple] = []
    with db.standalone() as conn:
        for i in range(0, len(wanted), LOOKUP_BATCH):
            batch = wanted[i:i + LOOKUP_BATCH]
            rows = query(conn, "SELECT s.hash_key, s.video_id, s.window_no FROM forensic_signatures s "
                               "JOIN videos v ON v.id = s.video_id AND v.status = 'ready' "
                               f"WHERE s.hash_key IN ({', '.join(['%s'] * len(batch))})", tuple(batch))
            out.extend((r["hash_key"], r["video_id"], r["window_no"]) for r in rows)
        conn.rollback()                     # end the read snapshot before the connection goes back
    if not out:
        return IndexHits(np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.int32))
    k, v, w = zip(*out)
    return IndexHits(np.array(k, np.int64), np.array(v, object), np.array(w, np.int32))


def rows_of(db) -> int:
    with db.standalone() as conn:
        return int(query(conn, "SELECT COUNT(*) AS n FROM forensic_signatures", one=True)["n"])
