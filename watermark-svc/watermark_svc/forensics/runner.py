"""Detection jobs in the media workers: claim (SKIP LOCKED), lease, trace, store.

The same workers that process videos run detections (worker.py asks for one when no
processing job is waiting), so no new process type is needed and `--scale` covers
both. A detection's scratch directory (suspect + originals) is always removed.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from svcommon import ffmpeg as ff
from svcommon.filestore import FileStore

from .. import repository as repo
from ..extensions import db
from ..jobs import Lease
from ..media.errors import InvalidMedia, LimitExceeded, MediaError
from ..media.probe import MediaLimits
from .dbcatalogue import DbCatalogue
from .evidence import enrich
from .trace import DEFAULT_MAX_FAP, trace

log = logging.getLogger("watermark.forensics")


class DetectionLost(Exception):
    """Our lease lapsed and another worker owns the detection now."""


def detection_lease(det_id: str, worker: str, lease_seconds: int) -> Lease:
    """The worker's lease mechanism, on the detections table (sub-second progress cadence)."""
    return Lease(db, det_id, worker, lease_seconds, renew=repo.renew_detection, lost=DetectionLost,
                 min_interval=0.5)


# The same claim shape as jobs.claim (SKIP LOCKED row, give up past max_attempts, start
# under a lease) on another table with another give-up: a video job also fails its video.
# Kept apart on purpose: the processing worker's claim is being reworked separately and a
# shared claim would tie detections to its changes; the lease itself is shared (Lease).
def claim_detection(worker: str, lease_seconds: int) -> dict | None:
    with db.standalone() as conn:
        conn.start_transaction()
        det = repo.next_claimable_detection(conn)
        if det is None:
            conn.rollback()
            return None
        if det["status"] == "running" and det["attempts"] >= det["max_attempts"]:
            repo.fail_detection(conn, det["id"], "the worker running this detection stopped responding too often")
            conn.commit()
            return None
        repo.start_detection(conn, det["id"], worker, lease_seconds)
        conn.commit()
        det["attempts"] += 1
        return det


def suspect_limits(cfg) -> MediaLimits:
    """The upload limits, with the duration capped for suspects (detector memory)."""
    limits = MediaLimits.from_config(cfg)
    cap = float(cfg.get("FORENSICS_MAX_SUSPECT_SECONDS", 3600))
    return replace(limits, max_duration_s=min(limits.max_duration_s, cap))


def run_detection(app, fs: FileStore, det: dict, lease: Lease) -> dict:
    cfg = app.config
    secret = cfg["WATERMARK_SECRET"].encode()
    with tempfile.TemporaryDirectory(dir=cfg["WORK_DIR"], prefix=f"sv-detect-{det['id'][:8]}-") as work:
        work = Path(work)
        lease.report(0.5, "fetch")
        suspect = work / "suspect"
        fs.download(det["suspect_key"], suspect)
        catalogue = DbCatalogue(db, fs, work)
        # Cancelling the detection (or losing its lease) kills every ffmpeg child it runs.
        tracker = ff.Tracker()
        lease.on_lost(tracker)
        with ff.tracking(tracker):
            result = trace(str(suspect), catalogue, secret, video_id=det["requested_video_id"],
                           max_fap=float(cfg.get("FORENSICS_MAX_FALSE_ACCUSATION", DEFAULT_MAX_FAP)),
                           progress=lease.report, limits=suspect_limits(cfg))
        if lease.lost.is_set():
            raise DetectionLost(det["id"])
        title = catalogue.title(result["video_id"]) if result.get("video_id") else None
    with db.standalone() as conn:
        enrich(conn, result, title)
        if not repo.finish_detection(conn, det["id"], lease.worker, result):
            conn.rollback()
            raise DetectionLost(det["id"])
        conn.commit()
    return result


def run_detection_once(app, fs: FileStore, worker: str) -> bool:
    """Claim and run at most one detection; True when one was handled."""
    with app.app_context():
        lease_seconds = int(app.config["WORKER_LEASE_SECONDS"])
        det = claim_detection(worker, lease_seconds)
        if det is None:
            return False
        log.info("detection claimed", extra={"job": det["id"], "attempt": det["attempts"]})
        try:
            with detection_lease(det["id"], worker, lease_seconds) as lease:
                run_detection(app, fs, det, lease)
            log.info("detection done", extra={"job": det["id"]})
        except DetectionLost:
            pass
        except Exception as exc:
            if isinstance(exc, MediaError) and _lost(det["id"], worker):
                return True             # cancelled meanwhile: its children were killed on purpose
            log.exception("detection failed", extra={"job": det["id"]})
            _failed(det, exc)
        return True


def _lost(det_id: str, worker: str) -> bool:
    with db.standalone() as conn:
        row = repo.detection(conn, det_id)
    return row is None or row["status"] != "running"


def _failed(det: dict, exc: BaseException) -> None:
    permanent = isinstance(exc, (InvalidMedia, LimitExceeded))
    reason = exc.reason if isinstance(exc, InvalidMedia) else f"detection error: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
    with db.standalone() as conn:
        if not permanent and det["attempts"] < det["max_attempts"]:
            repo.retry_detection(conn, det["id"], reason, 5 * det["attempts"])
        else:
            repo.fail_detection(conn, det["id"], reason)
        conn.commit()
