"""Work queues (``jobs``, ``detections``) shared by every test on one database: a test that
must know which row a worker claims holds back the rows other tests left claimable, and
afterwards settles only its own rows and hands the others back as they were."""
from __future__ import annotations

from contextlib import contextmanager

from tests.support.videos import sql

# How a test's own unfinished rows are settled (detections had no 'cancelled' at first).
SETTLED = {"jobs": "cancelled", "detections": "failed"}
CLAIMABLE = "status = 'queued' OR (status = 'running' AND lease_expires_at < UTC_TIMESTAMP(6))"


@contextmanager
def own_queue(conn, table: str):
    """Other tests' claimable rows (upload tests stop at 'queued') are postponed by ten years
    for the duration; then the rows this test added and left unfinished are settled and the
    postponed ones get their times back."""
    status = SETTLED[table]
    before = {r["id"] for r in sql(conn, f"SELECT id FROM {table}")}
    held = sql(conn, f"SELECT id, run_after, lease_expires_at FROM {table} WHERE {CLAIMABLE}")
    for row in held:
        sql(conn, f"UPDATE {table} SET run_after = run_after + INTERVAL 10 YEAR, "
                  "lease_expires_at = lease_expires_at + INTERVAL 10 YEAR WHERE id = %s", (row["id"],))
    try:
        yield
    finally:
        for row in sql(conn, f"SELECT id FROM {table} WHERE status IN ('queued', 'running')"):
            if row["id"] not in before:
                sql(conn, f"UPDATE {table} SET status = %s WHERE id = %s", (status, row["id"]))
        for row in held:
            sql(conn, f"UPDATE {table} SET run_after = %s, lease_expires_at = %s WHERE id = %s",
                (row["run_after"], row["lease_expires_at"], row["id"]))
