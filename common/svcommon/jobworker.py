"""The worker side of svcommon.jobqueue (its docstring has the whole API): the lease kept
alive from a side thread while a handler works, and ``run_once``, one claim → run →
complete / retry with backoff / dead-letter; a failure caused by an outage of our storage or
database (``outage``) waits OUTAGE_RETRY_SECONDS without using an attempt. ``hand_back()`` (a worker's SIGTERM handler)
stops the job in hand at once and gives it back to the queue: claimable immediately by
another worker, its attempt not counted, instead of waiting for the lease to lapse."""
from __future__ import annotations

import logging
import threading
import time

from mysql.connector import errors as myerrors

from . import db as database
from . import ffmpeg
from .filestore import FileStoreError
from .jobqueue import (Handler, Job, LeaseLost, WorkerLost, backoff, claim, complete, dead, drop_if_owned, error_text,
                       release, renew, retry)

log = logging.getLogger("svcommon.jobqueue")
_running: set["Lease"] = set()      # the leases of the jobs this process is working on now
_stopping = threading.Event()       # hand_back was called: a job claimed from now on goes back too
HANDED_BACK = "the worker stopped"
# An outage of our own storage or database is not the job's fault: it is retried this soon,
# its attempt given back, however long the outage lasts (file-svc tells clients to retry in
# 5 s; the fault matrix, tests/test_fault_matrix.py, prints how long each restart took).
OUTAGE_RETRY_SECONDS = 10
# A job queued below the default priority (0) is background work: a video's higher rungs,
# its storyboard and forensic reference, detections. Its ffmpeg children run this much nicer,
# so on a machine shared by several workers the parts that make a video playable (its lowest
# rung and audio, above 0) get the cores first (bench/results/processing_chunked_*.md).
BACKGROUND_NICE = 10


def child_niceness(priority: int) -> int:
    """How much nicer the ffmpeg children of a job queued at ``priority`` run."""
    return BACKGROUND_NICE if priority < 0 else 0


def outage(exc: BaseException) -> str | None:
    """The plain name of the outage that caused ``exc`` (looked for along its causes), or None
    when the job itself failed."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, FileStoreError) and exc.unavailable:
            return "video storage is unavailable"
        # Not a lock wait timeout or deadlock (1205, 1213), which db.unavailable also counts:
        # those come from the job's own statements and may recur; they use attempts.
        if isinstance(exc, myerrors.Error) and database.unavailable(exc) and exc.errno not in (1205, 1213):
            return "the database is unavailable"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


class Lease:
    """Keeps a claimed job's lease alive from a side thread and publishes its progress."""

    def __init__(self, db, job: Job, worker: str, lease_seconds: int, guard=None, max_interval: float = 5.0,
                 beat=None):
        from flask import current_app
        # The renewal thread needs the app (the pool lives on it); threads don't inherit contexts.
        self.app = current_app._get_current_object()
        self.db, self.job, self.worker, self.lease_seconds, self._guard = db, job, worker, lease_seconds, guard
        self._beat = beat                # called after each good renewal (worker liveness)
        self.interval = min(max_interval, lease_seconds / 3)   # the handler's cadence, or faster
        self.progress, self.step = 0.0, "starting"
        self.lost = threading.Event()
        self.handed_back = False         # lost on purpose: the worker is stopping (hand_back)
        self._groups: list = []          # process groups to cancel when the lease is lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.id[:8]}", daemon=True)

    def __enter__(self):
        _running.add(self)
        self._thread.start()
        if _stopping.is_set():           # claimed as the stop came: back at the first report
            self.hand_back()
        return self

    def __exit__(self, *exc):
        _running.discard(self)
        self._stop.set()
        self._thread.join(5)

    def hand_back(self) -> None:
        """Stop the work now (its process groups killed, the next ``report`` raises); run_once
        then gives the job back to the queue. Safe in a signal handler: it sets flags and
        sends signals."""
        self.handed_back = True
        self.lost.set()
        for group in list(self._groups):
            group.cancel(HANDED_BACK)

    def report(self, pct: float, step: str) -> None:
        """Progress callback handed to the work; also where a lost lease stops it."""
        self.progress, self.step = float(pct), step
        if self.lost.is_set():
            raise LeaseLost(self.job.id)

    def confirm(self) -> None:
        """Renew now and raise if the job is no longer ours: before a step another owner's work
        must never see (clearing outputs it may be writing). The renewal gives us the full
        lease from here, so nobody can take the job over during that step."""
        if not self._renew():
            self.lost.set()
            raise LeaseLost(self.job.id)

    def on_lost(self, group) -> None:
        """Cancel this process group (kill its children) as soon as the lease is lost; checked
        every renewal interval, whatever the progress."""
        self._groups.append(group)
        if self.lost.is_set():
            group.cancel("the work was cancelled (deleted, or taken over by another worker)")

    def _renew(self) -> bool:
        with self.db.standalone() as conn:
            ok = renew(conn, self.job.id, self.worker, self.lease_seconds, round(self.progress, 1), self.step) \
                and (self._guard is None or self._guard(conn, self.job))
            conn.commit()
        return ok

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.app.app_context():
                    ok = self._renew()
                if not ok:
                    self.lost.set()
                    for group in list(self._groups):
                        group.cancel("the work was cancelled (deleted, or taken over by another worker)")
                    return
                if self._beat is not None:
                    self._beat()         # a long job still shows a healthy worker
            except Exception as exc:     # a DB blip: try again next tick; the lease has slack
                log.warning("lease renewal failed", extra={"job": self.job.id, "error": str(exc)})


def hand_back() -> None:
    """Called by a stopping worker (its SIGTERM handler): every job it is running stops at
    once and goes back to the queue (run_once releases it), not after its lease lapses."""
    _stopping.set()
    for lease in list(_running):
        lease.hand_back()


def run_once(app, db, handlers: dict[str, Handler], worker: str, kinds=None, beat=None) -> bool:
    """Claim and run at most one job of ``kinds`` (default: every kind in ``handlers``);
    True when one was handled (done, retried, dead or lost)."""
    with app.app_context():
        lease_seconds = int(app.config["WORKER_LEASE_SECONDS"])
        claimed = claim(db, worker, lease_seconds, kinds or tuple(handlers))
        if claimed is None:
            return False
        job, handler = claimed.job, handlers[claimed.job.kind]
        if claimed.dead:
            # Leased to us to be dead-lettered: cleanup, then dead + on_dead in one transaction.
            log.error("job dead: its workers stopped responding", extra={"job": job.id, "kind": job.kind})
            _failed(app, db, handler, job, WorkerLost(), worker, lease_seconds)
            return True
        log.info("job claimed", extra={"job": job.id, "kind": job.kind, "subject": job.subject,
                                       "attempt": job.attempts})
        lease = Lease(db, job, worker, lease_seconds, handler.guard, handler.progress_interval, beat)
        try:
            with lease, ffmpeg.niceness(child_niceness(job.priority)):
                handler.run(app, job, lease)
                with db.standalone() as conn:
                    complete(conn, job, worker)      # no-op when the handler completed it itself
                    conn.commit()
            log.info("job done", extra={"job": job.id, "kind": job.kind})
        except Exception as exc:
            if lease.handed_back or isinstance(exc, LeaseLost) or lease.lost.is_set():
                _lost(app, db, handler, job, worker, lease.handed_back)
                return True
            if _outage_of(handler, exc) is None:     # an outage is logged once, without a traceback, below
                log.exception("job failed", extra={"job": job.id, "kind": job.kind, "attempt": job.attempts})
            _failed(app, db, handler, job, exc, worker, lease_seconds)
        return True


def _lost(app, db, handler: Handler, job: Job, worker: str, handed_back: bool = False) -> None:
    """Taken over (the new owner carries on), or cancelled / its subject deleted (then the
    job is removed); an error then is the children killed on purpose. ``handed_back``: the
    worker is stopping, so the job goes back to the queue, claimable now, its attempt given
    back; its partial outputs stay for the next run (same names). Either way on_lost then
    removes outputs if the subject was deleted or failed meanwhile."""
    with db.standalone() as conn:
        changed = release(conn, job, worker) if handed_back else drop_if_owned(conn, job, worker)
        conn.commit()
    log.info("job handed back" if handed_back else "job lost",
             extra={"job": job.id, "kind": job.kind, "released" if handed_back else "cancelled": changed})
    if handler.on_lost is not None:
        handler.on_lost(app, job)


def _when_database_answers(work, deadline: float):
    """``work()``, tried again every second while the database is unavailable, until
    ``deadline`` (monotonic): a job failed by a database outage is recorded once it is back,
    within its lease, rather than left to lapse (which would use up an attempt)."""
    while True:
        try:
            return work()
        except myerrors.Error as exc:
            if not database.unavailable(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(1)


def _failed(app, db, handler: Handler, job: Job, exc: BaseException, worker: str, lease_seconds: int) -> None:
    """Retry or dead-letter a job that is still ours: one taken over meanwhile is lost
    instead (its cleanup would remove the new owner's outputs). The renewal first gives a
    full lease for the cleanup; the queue's update checks the owner again. A failure caused
    by an outage (``outage``) is retried soon without using an attempt."""
    deadline = time.monotonic() + lease_seconds * 2 / 3

    def still_ours() -> bool:
        with db.standalone() as conn:
            ok = renew(conn, job.id, worker, lease_seconds, 0, "failed") \
                and (handler.guard is None or handler.guard(conn, job))
            conn.commit()
        return ok
    ours = _when_database_answers(still_ours, deadline)
    if not ours:
        _lost(app, db, handler, job, worker)
        return
    if handler.cleanup is not None:
        try:
            handler.cleanup(app, job, exc)
        except Exception as cleanup_exc:
            log.error("could not remove partial outputs", extra={"job": job.id, "error": str(cleanup_exc)})
    ours = _when_database_answers(lambda: _record_failure(app, db, handler, job, exc, worker), deadline)
    if not ours:
        _lost(app, db, handler, job, worker)


def _outage_of(handler: Handler, exc: BaseException) -> str | None:
    """The outage a failure waits for; None for the kind's permanent errors (dead at once,
    whatever caused them) and for a lost worker."""
    return None if isinstance(exc, (WorkerLost, *handler.permanent)) else outage(exc)


def _record_failure(app, db, handler: Handler, job: Job, exc: BaseException, worker: str) -> bool:
    """One transaction: the retry (or outage wait) or the dead letter, with its subject hook."""
    cause = _outage_of(handler, exc)
    with db.standalone() as conn:
        if cause is not None:
            log.warning("job waits for an outage to end", extra={"job": job.id, "kind": job.kind, "outage": cause,
                                                                 "error": error_text(exc)})
            ours = retry(conn, job, worker, f"{cause}: {error_text(exc)}", OUTAGE_RETRY_SECONDS, counted=False)
            if ours and handler.on_wait is not None:
                handler.on_wait(conn, job, cause, OUTAGE_RETRY_SECONDS)
        elif not isinstance(exc, (WorkerLost, *handler.permanent)) and job.attempts < job.max_attempts:
            delay = backoff(float(app.config["WORKER_RETRY_BASE_SECONDS"]), job.attempts)
            ours = retry(conn, job, worker, error_text(exc), delay)
            if ours and handler.on_retry is not None:
                handler.on_retry(conn, job, int(delay))
        else:
            ours = dead(conn, job, worker, error_text(exc))
            if ours and handler.on_dead is not None:
                handler.on_dead(conn, job, None if isinstance(exc, WorkerLost) else exc)
        conn.commit()
    return ours
