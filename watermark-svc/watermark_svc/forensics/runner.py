"""The 'detection.run' job (svcommon.jobqueue handler): fetch the suspect, trace, store the
result in the detection record. The same media workers run detections (after processing:
a lower priority), so no new process type is needed and `--scale` covers both. A
detection's scratch directory (suspect + originals) is always removed. Cancelling a
detection (status 'cancelled') fails the lease's guard: its children are killed within a
renewal interval and the job is dropped.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from svcommon import ffmpeg as ff
from svcommon import jobqueue as queue
from svcommon import webhooks
from svcommon.jobqueue import Handler, Job, LeaseLost
from svcommon.jobworker import Lease

from .. import repository as repo
from ..extensions import db, filestore
from ..forensics_api import report_url
from ..media.errors import InvalidMedia, LimitExceeded
from ..media.probe import MediaLimits
from .dbcatalogue import DbCatalogue
from .evidence import enrich
from .trace import DEFAULT_MAX_FAP, trace

log = logging.getLogger("watermark.forensics")


def suspect_limits(cfg) -> MediaLimits:
    """The upload limits, with the duration capped for suspects (detector memory)."""
    limits = MediaLimits.from_config(cfg)
    cap = float(cfg.get("FORENSICS_MAX_SUSPECT_SECONDS", 3600))
    return replace(limits, max_duration_s=min(limits.max_duration_s, cap))


def run_detection(app, job: Job, lease: Lease) -> None:
    cfg, fs = app.config, filestore(app)
    secret = cfg["WATERMARK_SECRET"].encode()
    with db.standalone() as conn:
        started = repo.start_detection(conn, job.subject)
        conn.commit()
        det = repo.detection(conn, job.subject)
    if not started:
        raise LeaseLost(job.id)         # cancelled before it ran
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
            raise LeaseLost(job.id)
        titles = catalogue.titles([result.get("video_id"), *(c["video_id"] for c in result.get("candidates", [])),
                                   (result.get("ambiguity") or {}).get("runner_up_video_id")])
    with db.standalone() as conn:
        enrich(conn, result, titles)
        if not repo.finish_detection(conn, det["id"], result) or not queue.complete(conn, job, lease.worker):
            conn.rollback()
            raise LeaseLost(job.id)
        if result.get("match"):
            _leak_traced(conn, det["id"], result)
        conn.commit()


def _leak_traced(conn, detection_id: str, result: dict) -> None:
    """The traced video's owner (and admins subscribed to every video) hear of the match;
    who leaked it stays in the report, which only administrators open."""
    owner = repo.video_owner(conn, result["video_id"])
    if owner is not None:
        webhooks.emit(conn, "leak.traced", owner, {
            "detection_id": detection_id, "video_id": result["video_id"], "method": result.get("method_used"),
            "false_accusation_probability": result.get("false_accusation_probability"),
            "report_url": report_url(detection_id)}, dedupe_key=f"leak.traced:{detection_id}")


def _on_retry(conn, job: Job, delay: int) -> None:
    repo.detection_waiting(conn, job.subject, f"attempt {job.attempts} of {job.max_attempts} failed; "
                                              f"retrying in {delay} s")


def _on_wait(conn, job: Job, outage: str, delay: int) -> None:
    repo.detection_waiting(conn, job.subject, f"{outage[0].upper()}{outage[1:]}; retrying in {delay} s "
                                              "(this does not count as a failed attempt)")


def _on_dead(conn, job: Job, exc: BaseException | None) -> None:
    reason = ("the worker running this detection stopped responding too often" if exc is None
              else queue.error_text(exc) if isinstance(exc, InvalidMedia)
              else f"detection error: {queue.error_text(exc)}")
    repo.fail_detection(conn, job.subject, reason)


def _on_requeue(conn, job: Job) -> None:
    repo.detection_waiting(conn, job.subject, "retried by an administrator")


def _active(conn, job: Job) -> bool:
    return repo.detection_active(conn, job.subject)


# Sub-second renewals (progress_interval is the longest interval): the admin console
# follows a detection's progress closely.
DETECTION = Handler(run=run_detection, permanent=(InvalidMedia, LimitExceeded), on_retry=_on_retry,
                    on_wait=_on_wait, on_dead=_on_dead, on_requeue=_on_requeue, guard=_active, progress_interval=0.5)
