"""The attack table's ledger: what an attacker's request could leave behind (rows in the
tables it could fill, objects in the bucket, temporary files a service holds open), read
before and after each row of tests/test_security_attacks.py."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from tests.ingest_helpers import s3_client, s3_pending_multipart

# Tables an attacker's request could leave rows in. security_events, dpop_replay and the
# throttle tables are *meant* to record attacks, so they are not part of the ledger.
LEDGER_TABLES = ["users", "videos", "uploads", "jobs", "playback_sessions", "devices", "refresh_tokens",
                 "video_access_grants", "detections", "video_media"]


# ---- the ledger: rows, objects, temp files ------------------------------------------------------
def _service_pids(live_stack) -> list[int]:
    """Every gunicorn master we started and its workers."""
    masters = {p.pid for name, p in live_stack["procs"].procs if name not in ("mariadb", "seaweed", "gateway")}
    pids = set(masters)
    for entry in os.listdir("/proc"):
        if entry.isascii() and entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in masters:
                pids.add(int(entry))
    return sorted(pids)


def _open_temp_files(live_stack) -> list[str]:
    """Files a service holds open under a temp directory (spooled request bodies)."""
    held = []
    for pid in _service_pids(live_stack):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(("/tmp/", "/var/tmp/")) or (target.startswith("/") and "(deleted)" in target):
                held.append(f"{pid}:{target}")
    return held


@dataclass
class Ledger:
    rows: dict[str, int]
    objects: int
    temp_files: list[str] = field(default_factory=list)


def read_ledger(conn, s3_count: Callable[[], int], live_stack) -> Ledger:
    cur = conn.cursor()
    rows = {}
    for table in LEDGER_TABLES:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        rows[table] = cur.fetchone()[0]
    cur.close()
    return Ledger(rows, s3_count(), _open_temp_files(live_stack))


def s3_counter(env: dict) -> Callable[[], int]:
    """Counts objects and pending multipart uploads in the bucket, straight from S3."""
    def count() -> int:
        s3 = s3_client(env)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env["S3_BUCKET"])
        return sum(p.get("KeyCount", 0) for p in pages) + len(s3_pending_multipart(env, ""))
    return count
