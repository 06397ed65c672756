"""One generic MariaDB job queue (table ``jobs``, migration 011) for every kind of background
work: video processing, forensic detections, and whatever comes next.

API (all SQL of the queue lives here; a handler's own SQL stays in its service's repository):

    enqueue(conn, kind, payload, *, subject=None, priority=0, max_attempts=3, delay=0) -> job id
        In the caller's transaction (the job exists exactly when the caller's rows do).
    claim(db, worker, lease_seconds, kinds=None) -> Claim(job, dead) | None
        Highest priority first, then oldest: queued jobs whose run_after has come, and
        running jobs whose lease lapsed (their worker died), locked one row at a time with
        FOR UPDATE SKIP LOCKED. A lapsed job already at max_attempts is leased to this
        worker without a new attempt (Claim.dead): run_once dead-letters it with its
        cleanup and subject hook (a crash before that lets the lease lapse again).
    complete(conn, job, worker) / retry(conn, job, worker, error, delay, counted=True) /
    dead(conn, job, worker, reason) -> bool: False (nothing written) when the job is no
        longer ``worker``'s. ``counted=False`` gives the attempt back (an outage).
    release(conn, job, worker): a stopping worker hands its job back (queued now, its attempt
        given back); release_lapsed(conn, id, seconds): fsck's repair of a lapsed lease.
    forget(conn, subject, kinds=(), only_queued=False): a deleted subject's jobs go (a
        running one's lease is then lost); with ``kinds`` only those, with ``only_queued``
        only the waiting ones.
    of_subject(conn, subject, kinds, statuses): a subject's jobs (a video's dead chunk jobs).
    listing(conn, status, kind, limit) / get(conn, id) / requeue_dead(conn, id): the admin
        view; requeue_dead puts a dead job back with fresh attempts.
  The worker side (svcommon.jobworker):
    Lease(db, job, worker, lease_seconds, guard=None, max_interval=5.0, beat=None): context
        manager renewing the lease from a side thread; .report(pct, step); .confirm()
        (raises LeaseLost when lost); .lost Event; .on_lost(group) cancels a process group
        when the lease is lost. ``guard(conn, job)`` runs in every renewal: False (subject
        deleted, detection cancelled) loses the lease at once.
    run_once(app, db, handlers, worker, kinds=None, beat=None): claim one job, run
        ``handlers[kind]`` (a Handler) under a lease, then complete it, or retry it with
        exponential backoff (WORKER_RETRY_BASE_SECONDS * 4^(attempt-1)), or dead-letter it
        (its ``permanent`` errors, or attempts used up). A failure caused by an outage of
        our own storage or database (jobworker.outage) is retried after OUTAGE_RETRY_SECONDS
        without using an attempt, however long the outage lasts. Handler hooks update the
        subject's own state (the video's status, the detection record) in the queue's
        transaction.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .db import execute, query

if TYPE_CHECKING:
    from .jobworker import Lease

COLS = ("id, kind, subject, payload, priority, status, attempts, max_attempts, progress, step, last_error, "
        "lease_owner, lease_expires, run_after, created_at, updated_at, finished_at")
STATUSES = ("queued", "running", "done", "dead")
# Kinds named by more than one service: upload-svc enqueues processing, watermark-svc runs it.
VIDEO_PROCESS = "video.process"
DETECTION_RUN = "detection.run"
LOST_REASON = "the worker running this job stopped responding too often"


class LeaseLost(Exception):
    """The job is no longer ours (another worker took it over, or its subject was deleted or
    cancelled): stop without touching it."""


class WorkerLost(Exception):
    """The failure of a job whose lease lapsed on its last attempt (its workers died)."""

    def __init__(self):
        super().__init__(LOST_REASON)


@dataclass
class Job:
    id: str
    kind: str
    payload: dict
    subject: str | None
    priority: int
    attempts: int                      # including the current one once claimed
    max_attempts: int


@dataclass(frozen=True)
class Claim:
    job: Job
    dead: bool = False                 # lapsed at max_attempts: leased to be dead-lettered


@dataclass(frozen=True)
class Handler:
    """How one kind of job runs. ``run(app, job, lease)`` does the work; it may complete the
    job itself inside its own result transaction (``complete``), else run_once does.
    ``permanent``: errors no retry can fix (dead-lettered at once). ``cleanup(app, job, exc)``
    removes partial outputs before a retry or the dead letter. ``on_retry(conn, job, delay)`` /
    ``on_dead(conn, job, exc)`` update the subject's state in the queue's transaction
    (``exc`` None: the worker stopped responding; cleanup then gets a WorkerLost);
    ``on_wait(conn, job, outage, delay)`` instead of on_retry when an outage (its plain
    name, e.g. "video storage is unavailable") failed the job, its attempt given back.
    ``on_requeue(conn, job)`` runs with an administrator's retry. ``guard(conn, job)``:
    False cancels the running job (and a failing one is then lost, not retried).
    ``on_lost(app, job)`` after the job was lost (taken over, cancelled, subject deleted)."""
    run: Callable[[Any, Job, "Lease"], None]
    permanent: tuple[type[BaseException], ...] = ()
    cleanup: Callable[[Any, Job, BaseException], None] | None = None
    on_retry: Callable[[Any, Job, int], None] | None = None
    on_dead: Callable[[Any, Job, BaseException | None], None] | None = None
    on_wait: Callable[[Any, Job, str, int], None] | None = None
    on_requeue: Callable[[Any, Job], None] | None = None
    on_lost: Callable[[Any, Job], None] | None = None
    guard: Callable[[Any, Job], bool] | None = None
    progress_interval: float = 5.0     # longest renewal interval (progress cadence; lease/3 if shorter)


def _job(row: dict) -> Job:
    payload = row["payload"]
    return Job(id=row["id"], kind=row["kind"], payload=json.loads(payload) if payload else {},
               subject=row["subject"], priority=int(row["priority"]), attempts=int(row["attempts"]),
               max_attempts=int(row["max_attempts"]))


def enqueue(conn, kind: str, payload: dict | None = None, *, subject: str | None = None, priority: int = 0,
            max_attempts: int = 3, delay: float = 0) -> str:
    job_id = uuid.uuid4().hex
    execute(conn, "INSERT INTO jobs (id, kind, subject, payload, priority, max_attempts, run_after) "
                  "VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND)",
            (job_id, kind, subject, json.dumps(payload or {}), priority, max_attempts, int(delay * 1e6)))
    return job_id


CLAIMABLE = ("((status = 'queued' AND run_after <= UTC_TIMESTAMP(6)) "
             "OR (status = 'running' AND lease_expires < UTC_TIMESTAMP(6)))")


def claim(db, worker: str, lease_seconds: int, kinds=None) -> Claim | None:
    # Two steps: a plain read of the next few candidates in queue order, then a locking read
    # of one row by primary key. A single ORDER BY … LIMIT 1 FOR UPDATE SKIP LOCKED sorts with
    # a filesort and locks every row it read, so a second worker found all of them locked
    # and nothing to claim (tests/test_job_queue.py's race).
    kinds = tuple(kinds or ())
    only = f"kind IN ({', '.join(['%s'] * len(kinds))}) AND " if kinds else ""
    with db.standalone() as conn:
        for _ in range(5):                   # every candidate taken meanwhile: look again
            conn.start_transaction()
            ids = [r["id"] for r in query(conn, f"SELECT id FROM jobs WHERE {only}{CLAIMABLE} "
                                                "ORDER BY priority DESC, created_at LIMIT 8", kinds)]
            for job_id in ids:
                row = query(conn, f"SELECT {COLS} FROM jobs WHERE id = %s AND {CLAIMABLE} FOR UPDATE SKIP LOCKED",
                            (job_id,), one=True)
                if row is not None:
                    return _take(conn, row, worker, lease_seconds)
            conn.rollback()
            if not ids:
                return None
    return None


def _take(conn, row: dict, worker: str, lease_seconds: int) -> Claim:
    job = _job(row)
    # Its last worker died holding the final attempt: leased to us without a new attempt, so
    # that run_once dead-letters it (cleanup, then dead + the subject's hook in one transaction).
    lapsed = row["status"] == "running" and job.attempts >= job.max_attempts
    execute(conn, "UPDATE jobs SET status = 'running', attempts = attempts + %s, lease_owner = %s, "
                  "lease_expires = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, progress = 0, step = %s, "
                  "updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
            (0 if lapsed else 1, worker, lease_seconds, "lost" if lapsed else "starting", job.id))
    conn.commit()
    job.attempts += 0 if lapsed else 1
    return Claim(job, dead=lapsed)


OWNED = "id = %s AND lease_owner = %s AND status = 'running'"     # still this worker's job


def renew(conn, job_id: str, worker: str, lease_seconds: int, progress: float, step: str) -> bool:
    return execute(conn, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, progress = %s, "
                         f"step = %s, updated_at = UTC_TIMESTAMP(6) WHERE {OWNED}",
                   (lease_seconds, progress, step[:64], job_id, worker)) == 1


def complete(conn, job: Job, worker: str) -> bool:
    return execute(conn, "UPDATE jobs SET status = 'done', progress = 100, step = 'done', lease_owner = NULL, "
                         "lease_expires = NULL, finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                         f"WHERE {OWNED}", (job.id, worker)) == 1


def retry(conn, job: Job, worker: str, error: str, delay_seconds: float, counted: bool = True) -> bool:
    """Back to queued after ``delay_seconds``. ``counted=False`` (an outage of our own storage
    or database, not the job's fault) gives the attempt back."""
    return execute(conn, "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL, "
                         "attempts = GREATEST(attempts - %s, 0), "
                         "last_error = %s, run_after = UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND, "
                         f"step = %s, updated_at = UTC_TIMESTAMP(6) WHERE {OWNED}",
                   (0 if counted else 1, error[:2000], int(delay_seconds * 1e6),
                    "waiting to retry" if counted else "waiting for an outage to end", job.id, worker)) == 1


def dead(conn, job: Job, worker: str, reason: str) -> bool:
    return execute(conn, "UPDATE jobs SET status = 'dead', lease_owner = NULL, lease_expires = NULL, last_error = %s, "
                         "step = 'dead', finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                         f"WHERE {OWNED}", (reason[:2000], job.id, worker)) == 1


def release(conn, job: Job, worker: str) -> bool:
    """Hand a job that is still ``worker``'s back to the queue at once (the worker is shutting
    down): claimable now by anyone, and the attempt it used is given back, since nothing
    failed."""
    return execute(conn, "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), lease_owner = NULL, "
                         "lease_expires = NULL, run_after = UTC_TIMESTAMP(6), progress = 0, step = 'queued', "
                         f"updated_at = UTC_TIMESTAMP(6) WHERE {OWNED}", (job.id, worker)) == 1


def release_lapsed(conn, job_id: str, lapsed_seconds: float) -> bool:
    """A running job whose lease lapsed more than ``lapsed_seconds`` ago and that no worker
    took over (no worker runs that kind) back to queued (fsck --repair). The lapsed attempt
    stays counted, as a claim of the lapsed job would count it; one at its last attempt is
    left for a worker's claim to dead-letter."""
    return execute(conn, "UPDATE jobs SET status = 'queued', lease_owner = NULL, "
                         "lease_expires = NULL, run_after = UTC_TIMESTAMP(6), progress = 0, step = 'queued', "
                         "updated_at = UTC_TIMESTAMP(6) WHERE id = %s AND status = 'running' "
                         "AND attempts < max_attempts "
                         "AND lease_expires < UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND",
                   (job_id, int(lapsed_seconds * 1e6))) == 1


def drop_if_owned(conn, job: Job, worker: str) -> bool:
    """A job cancelled under its worker (guard false: subject deleted or cancelled) is removed;
    one taken over by another worker is left to it."""
    return execute(conn, f"DELETE FROM jobs WHERE {OWNED}", (job.id, worker)) == 1


def _marks(items) -> str:
    return ", ".join(["%s"] * len(items))


def forget(conn, subject: str, kinds: tuple[str, ...] = (), only_queued: bool = False) -> int:
    """Remove a subject's jobs: all of them (its video or detection is deleted), or those of
    ``kinds`` (a re-planned video's chunk jobs), or only the waiting ones (a failed video's)."""
    where = (f" AND kind IN ({_marks(kinds)})" if kinds else "") + (" AND status = 'queued'" if only_queued else "")
    return execute(conn, "DELETE FROM jobs WHERE subject = %s" + where, (subject, *kinds))


def of_subject(conn, subject: str, kinds: tuple[str, ...], statuses: tuple[str, ...] = STATUSES) -> list[Job]:
    """A subject's jobs of ``kinds`` in ``statuses``, oldest first."""
    rows = query(conn, f"SELECT {COLS} FROM jobs WHERE subject = %s AND kind IN ({_marks(kinds)}) "
                       f"AND status IN ({_marks(statuses)}) ORDER BY created_at", (subject, *kinds, *statuses))
    return [_job(r) for r in rows]


def get(conn, job_id: str, for_update: bool = False) -> dict | None:
    return query(conn, f"SELECT {COLS} FROM jobs WHERE id = %s" + (" FOR UPDATE" if for_update else ""),
                 (job_id,), one=True)


def listing(conn, status: str | None, kind: str | None, limit: int) -> list[dict]:
    where = [w for w, v in (("status = %s", status), ("kind = %s", kind)) if v]
    return query(conn, f"SELECT {COLS} FROM jobs {'WHERE ' + ' AND '.join(where) if where else ''} "
                       "ORDER BY updated_at DESC LIMIT %s", (*[v for v in (status, kind) if v], limit))


def requeue_dead(conn, job_id: str) -> bool:
    """dead → queued with a fresh set of attempts (the last error is kept for the record)."""
    return execute(conn, "UPDATE jobs SET status = 'queued', attempts = 0, run_after = UTC_TIMESTAMP(6), "
                         "progress = 0, step = 'queued', finished_at = NULL, updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND status = 'dead'", (job_id,)) == 1


def backoff(base_seconds: float, attempt: int) -> float:
    return base_seconds * 4 ** max(0, attempt - 1)


def error_text(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return getattr(exc, "reason", None) or text
