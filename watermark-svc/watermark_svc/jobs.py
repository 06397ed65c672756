"""The media workers' job kinds on the one queue (svcommon.jobqueue): the handler map, one
claim-and-run step, and the worker's liveness file. Priorities: a video's audio and its
lowest rung's chunks (5: playable early), planning ('video.process', enqueued by upload-svc
at 0), higher rungs' chunks and the storyboard ('video.storyboard', -1, queued after the
chunks), the forensic reference ('video.reference', -2), detections ('detection.run', -10);
webhook deliveries ('webhook.deliver', 10: short network calls, never held back by encoding)."""
from __future__ import annotations

import logging
import os

from svcommon import jobworker
from svcommon.jobqueue import DETECTION_RUN, VIDEO_PROCESS, Handler
from svcommon.webhooks import DELIVER

from .extensions import db

log = logging.getLogger("watermark.jobs")
DETECTION_PRIORITY = -10


def heartbeat(app) -> None:
    """Show liveness to the container healthcheck: a stuck loop or a lost DB stops the touches."""
    path = app.config.get("WORKER_HEARTBEAT_FILE")
    if path:
        try:
            with open(path, "a"):
                os.utime(path)
        except OSError as exc:
            log.warning("cannot touch heartbeat file", extra={"path": path, "error": str(exc)})


def handlers() -> dict[str, Handler]:
    # Imported here: the API (jobs_admin, forensics_api) imports this module; the job
    # modules (media, forensics) are loaded only when a handler map is asked for.
    from .chunk_jobs import AUDIO_JOB, CHUNK
    from .encode_state import VIDEO_AUDIO, VIDEO_CHUNK, VIDEO_REFERENCE, VIDEO_STORYBOARD
    from .forensics.runner import DETECTION
    from .handlers import PROCESS, REFERENCE
    from .storyboards import STORYBOARD
    from .webhook_delivery import DELIVERY
    return {VIDEO_PROCESS: PROCESS, VIDEO_CHUNK: CHUNK, VIDEO_AUDIO: AUDIO_JOB, VIDEO_REFERENCE: REFERENCE,
            VIDEO_STORYBOARD: STORYBOARD, DETECTION_RUN: DETECTION, DELIVER: DELIVERY}


def run_once(app, worker: str, kinds=None) -> bool:
    """Claim and run at most one job (of ``kinds``, default every kind); True when one was handled."""
    return jobworker.run_once(app, db, handlers(), worker, kinds, beat=lambda: heartbeat(app))
