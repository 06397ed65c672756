"""Media worker process: ``python -m watermark_svc.worker``. Run as many as you like (and
``docker compose up --scale watermark-worker=N``): jobs come from the one queue
(svcommon.jobqueue: SKIP LOCKED claims, leases), so a killed worker's job is picked up again
when its lease lapses; a worker stopped with SIGTERM (or SIGINT) hands the job in hand back
at once (svcommon.jobworker.hand_back: killed children, the job queued again with its
attempt given back) and exits. With nothing queued, a worker converts delivery-v1 media to v2 a slice at a time (convert.py)."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid

from svcommon import jobworker

from . import create_app
from .convert import convert_when_idle
from .extensions import db, filestore
from .jobs import heartbeat, run_once
from .originals import cache_of, sweep_stale

log = logging.getLogger("watermark.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def main() -> int:
    app = create_app()
    fs = filestore(app)          # the app's own client, passed on: the loop runs outside requests
    me = worker_id()
    stop = threading.Event()

    def on_stop(*_):
        stop.set()
        # Another worker may take the job now, not after the lease lapses. From a thread: the
        # handler interrupted here may hold a lock that cancelling its children takes.
        threading.Thread(target=jobworker.hand_back, name="hand-back", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_stop)
    held_back: dict[str, float] = {}     # v1 videos whose conversion failed: retried later
    sweep_stale(app.config["WORK_DIR"])   # copies left by killed workers (a persistent volume)
    log.info("worker started", extra={"worker": me})
    while not stop.is_set():
        heartbeat(app)
        try:
            # A queued job (processing before detections: priorities); with none, one slice
            # of a v1 video's conversion (then the queue is looked at again).
            if not run_once(app, me) and not convert_when_idle(app, db, fs, held_back):
                stop.wait(float(app.config["WORKER_POLL_SECONDS"]))
        except Exception:
            log.exception("worker loop error; backing off")
            stop.wait(5)
    cache_of(app).clear()        # the local copies of originals are this worker's alone
    log.info("worker stopped", extra={"worker": me})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
