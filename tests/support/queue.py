"""The job queue (``jobs``) is shared by every test on one database: a test that must know
which row a worker claims holds back the rows other tests left claimable, and afterwards
settles only its own rows (dead) and hands the others back as they were."""
from __future__ import annotations

from contextlib import contextmanager

from tests.support.videos import sql

CLAIMABLE = "status = 'queued' OR (status = 'running' AND lease_expires < UTC_TIMESTAMP(6))"


@contextmanager
def own_queue(conn):
    """Other tests' claimable rows (upload tests stop at 'queued') are postponed by ten years
    for the duration; then the rows this test added and left unfinished are settled and the
    postponed ones get their times back."""
    before = {r["id"] for r in sql(conn, "SELECT id FROM jobs")}
    held = sql(conn, f"SELECT id, run_after, lease_expires FROM jobs WHERE {CLAIMABLE}")
    for row in held:
        sql(conn, "UPDATE jobs SET run_after = run_after + INTERVAL 10 YEAR, "
                  "lease_expires = lease_expires + INTERVAL 10 YEAR WHERE id = %s", (row["id"],))
    try:
        yield
    finally:
        for row in sql(conn, "SELECT id FROM jobs WHERE status IN ('queued', 'running')"):
            if row["id"] not in before:
                sql(conn, "UPDATE jobs SET status = 'dead' WHERE id = %s", (row["id"],))
        for row in held:
            sql(conn, "UPDATE jobs SET run_after = %s, lease_expires = %s WHERE id = %s",
                (row["run_after"], row["lease_expires"], row["id"]))
