"""Media worker process: ``python -m watermark_svc.worker``. Run as many as you like (and
``docker compose up --scale watermark-worker=N``): jobs are claimed with SKIP LOCKED and
leased, so a killed worker's job is picked up again when its lease lapses. With nothing
queued, a worker converts delivery-v1 media to v2 a slice at a time (convert.py)."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid

from svcommon.filestore import FileStore

from . import create_app
from .convert import convert_when_idle
from .extensions import db, filestore
from .forensics.runner import run_detection_once
from .handlers import handle_failure, process_video
from .jobs import Lease, claim, heartbeat

log = logging.getLogger("watermark.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_once(app, fs: FileStore, worker: str) -> bool:
    """Claim and process at most one job; True when a job was handled (ok or failed)."""
    with app.app_context():
        lease_seconds = int(app.config["WORKER_LEASE_SECONDS"])
        job = claim(db, worker, lease_seconds)
        if job is None:
            return False
        log.info("job claimed", extra={"job": job["id"], "video_id": job["video_id"], "attempt": job["attempts"]})
        try:
            with Lease(db, job["id"], worker, lease_seconds) as lease:
                process_video(app, db, fs, job, lease)
            log.info("job done", extra={"job": job["id"], "video_id": job["video_id"]})
        except Exception as exc:
            log.exception("job failed", extra={"job": job["id"], "video_id": job["video_id"]})
            handle_failure(app, db, fs, job, exc)
        return True


def main() -> int:
    app = create_app()
    fs = filestore(app)          # the app's own client, passed on: the loop runs outside requests
    me = worker_id()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    held_back: dict[str, float] = {}     # v1 videos whose conversion failed: retried later
    log.info("worker started", extra={"worker": me})
    while not stop.is_set():
        heartbeat(app)
        try:
            # Processing first (uploaders wait on it); a detection when no video is waiting;
            # with neither, one slice of a v1 video's conversion (then jobs are looked at again).
            if not run_once(app, fs, me) and not run_detection_once(app, fs, me) \
                    and not convert_when_idle(app, db, fs, held_back):
                stop.wait(float(app.config["WORKER_POLL_SECONDS"]))
        except Exception:
            log.exception("worker loop error; backing off")
            stop.wait(5)
    log.info("worker stopped", extra={"worker": me})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
