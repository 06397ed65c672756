"""The processing queue: claim with SELECT … FOR UPDATE SKIP LOCKED (many workers, no
double claims), a lease the worker renews from a side thread, bounded retries with
exponential backoff, then ``failed`` with the reason shown to the uploader."""
from __future__ import annotations

import logging
import os
import threading

from . import repository as repo

log = logging.getLogger("watermark.jobs")


class LeaseLost(Exception):
    """Another worker took the job over (our lease lapsed): stop without touching it."""


def heartbeat(app) -> None:
    """Show liveness to the container healthcheck: a stuck loop or a lost DB stops the touches."""
    path = app.config.get("WORKER_HEARTBEAT_FILE")
    if path:
        try:
            with open(path, "a"):
                os.utime(path)
        except OSError as exc:
            log.warning("cannot touch heartbeat file", extra={"path": path, "error": str(exc)})


def claim(db, worker: str, lease_seconds: int) -> dict | None:
    with db.standalone() as conn:
        conn.start_transaction()
        job = repo.next_claimable_job(conn)
        if job is None:
            conn.rollback()
            return None
        if job["status"] == "running" and job["attempts"] >= job["max_attempts"]:
            # Its last worker died holding the final attempt: give up loudly.
            repo.fail_job(conn, job["id"], "the worker processing this video stopped responding too often")
            repo.set_video_status(conn, job["video_id"], "failed", "processing failed repeatedly; please re-upload")
            conn.commit()
            return None
        repo.start_job(conn, job["id"], worker, lease_seconds)
        repo.set_video_status(conn, job["video_id"], "processing", "processing started")
        conn.commit()
        job["attempts"] += 1
        return job


class Lease:
    """Keeps a claimed piece of work's lease alive and publishes its progress while the
    handler works. ``renew(conn, lease_id, worker, lease_seconds, progress, step) -> bool``
    is the repository statement for the table it lives in (jobs, detections); False means
    another worker owns it now."""

    def __init__(self, db, lease_id: str, worker: str, lease_seconds: int, renew=repo.renew_lease,
                 lost=LeaseLost, min_interval: float = 1.0):
        from flask import current_app
        # The renewal thread needs the app (the pool lives on it); threads don't inherit contexts.
        self.app = current_app._get_current_object()
        self.db, self.id, self.worker, self.lease_seconds = db, lease_id, worker, lease_seconds
        self._renew, self._lost_exc = renew, lost
        self._interval = max(min_interval, min(5.0, lease_seconds / 3))
        self.progress, self.step = 0.0, "starting"
        self.lost = threading.Event()
        self._groups: list = []          # process groups to cancel when the lease is lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{lease_id[:8]}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def report(self, pct: float, step: str) -> None:
        """Progress callback handed to the pipeline; also where a lost lease stops the work."""
        self.progress, self.step = float(pct), step
        if self.lost.is_set():
            raise self._lost_exc(self.id)

    def confirm(self) -> None:
        """Renew now and raise if the work is no longer ours: before a step another owner's
        work must never see (clearing outputs it may be writing). The renewal gives us
        the full lease from here, so nobody can take the work over during that step."""
        with self.db.standalone() as conn:
            ok = self._renew(conn, self.id, self.worker, self.lease_seconds, round(self.progress, 1), self.step)
            conn.commit()
        if not ok:
            self.lost.set()
            raise self._lost_exc(self.id)

    def on_lost(self, group) -> None:
        """Cancel this process group (kill its children) as soon as the lease is lost: the
        video was deleted (its job row went with it), the job or detection was cancelled,
        or another worker took over. Checked every renewal interval, whatever the progress."""
        self._groups.append(group)
        if self.lost.is_set():
            group.cancel("the work was cancelled (deleted, or taken over by another worker)")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self.app.app_context(), self.db.standalone() as conn:
                    ok = self._renew(conn, self.id, self.worker, self.lease_seconds, round(self.progress, 1), self.step)
                    conn.commit()
                if not ok:
                    self.lost.set()
                    for group in list(self._groups):
                        group.cancel("the work was cancelled (deleted, or taken over by another worker)")
                    return
                heartbeat(self.app)      # a long job still shows a healthy worker
            except Exception as exc:  # a DB blip: try again next tick; the lease has slack
                log.warning("lease renewal failed", extra={"lease": self.id, "error": str(exc)})


def retry_delay(base_seconds: int, attempt: int) -> int:
    return base_seconds * 4 ** max(0, attempt - 1)
