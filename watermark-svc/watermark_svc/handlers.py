"""The 'video.process' job (svcommon.jobqueue handler) plans a video's processing: fetch the
original (the worker's local copy, originals.py), probe, plan the ladder and its chunks,
make poster and thumbnail, draw a new content secret; then, in one transaction, store the
plan with the sealed secret (repository/chunks.py), enqueue one 'video.audio' job and one
'video.chunk' job per rung × chunk (chunk_jobs.py; the lowest rung and audio first, at a
higher priority, so the video becomes playable early), one 'video.reference' job (the
forensic reference, after the higher rungs), one 'video.storyboard' job (seek previews:
storyboards.py) and complete the job. The hooks keep the
video's status in step with the queue (retrying, failed) and remove partial outputs.

'video.reference' builds what a trace of a leak needs (analysis proxy + fingerprint) from
the worker's copy of the original, once per video; best effort (a trace builds it itself
if it is missing), never in the way of the video becoming playable."""
from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from svcommon import jobqueue as queue
from svcommon import webhooks
from svcommon.filestore import media_prefix
from svcommon.jobqueue import Handler, Job, LeaseLost
from svcommon.jobworker import Lease
from svcommon.media_crypto import ContentSealer
from svcommon.mediaprobe import MediaLimits

from . import repository as repo
from .encode_state import (AUDIO_PRIORITY, ORIGINAL_READERS, REFERENCE_PRIORITY, STORYBOARD_PRIORITY, VIDEO_AUDIO,
                           VIDEO_CHUNK, VIDEO_REFERENCE, VIDEO_STORYBOARD, EncodeState, chunk_priority,
                           encode_message)
from .extensions import db, filestore
from .forensics.dbcatalogue import discard_if_deleted, geometry_from_metadata, store_reference
from .media import pipeline
from .media.chunks import plan_chunks
from .media.errors import InvalidMedia, LimitExceeded, MediaError
from .media.ffmpeg_cmd import EncodeSettings
from .media.plan import plan_job
from .media.probe import probe_to_publish
from .media.procs import ProcessGroup
from .media_store import put_plain
from .originals import cache_of

log = logging.getLogger("watermark.handlers")


def plan_video(app, job: Job, lease: Lease) -> None:
    cfg, fs = app.config, filestore(app)
    vid = job.subject
    with db.standalone() as conn:
        video = repo.video(conn, vid)
        repo.set_video_status(conn, vid, "processing", "preparing")
        conn.commit()
    if video is None or video["status"] == "deleting":
        raise LeaseLost(job.id)             # deleted meanwhile: on_lost removes what we wrote
    source = local_original(app, job, lease, video)
    limits = MediaLimits.from_config(cfg)
    with tempfile.TemporaryDirectory(dir=cfg["WORK_DIR"], prefix=f"sv-plan-{vid[:8]}-") as work:
        work = Path(work)
        state = _plan(cfg, source, work, limits, lease, job)
        keys, sealed = ContentSealer(cfg["MEDIA_MASTER_KEY"]).new_secret(vid)
        # An earlier plan's outputs are named under its own, lost secret: clear them, but
        # only while the job is surely still ours.
        lease.confirm()
        fs.delete_prefix(media_prefix(vid))
        for name in ("poster.jpg", "thumb.jpg"):
            put_plain(fs, vid, name, work / name)
        with db.standalone() as conn:
            _enqueue_work(conn, vid, state, sealed, job.priority)
            if not queue.complete(conn, job, lease.worker):
                conn.rollback()
                raise LeaseLost(job.id)
            conn.commit()
        log.info("video planned", extra={"video_id": vid, "chunks": len(state.chunks),
                                         "rungs": [r.name for r in state.plan.rungs]})


def local_original(app, job: Job, lease: Lease, video: dict) -> Path:
    """This worker's copy of the video's original (fetched when it has none: originals.py)."""
    if not video["original_key"]:
        raise InvalidMedia("the video or its original no longer exists")
    lease.report(1, "fetch")
    return cache_of(app).get(filestore(app), job.subject, video["original_key"])


@contextmanager
def job_processes(lease: Lease, job: Job, logs: Path, bounds) -> Iterator[ProcessGroup]:
    """The job's ffmpeg children in one group, killed when the lease is lost (deleted video,
    cancelled, taken over) and always at the end; a media error caused by that kill is the
    lost lease, not a failure of the video."""
    group = ProcessGroup(logs, bounds)
    lease.on_lost(group)
    try:
        yield group
    except MediaError as exc:
        if lease.lost.is_set():             # cancelled: the children were killed on purpose
            raise LeaseLost(job.id) from exc
        raise
    finally:
        group.kill_all()


def _plan(cfg, source: Path, work: Path, limits: MediaLimits, lease: Lease, job: Job) -> EncodeState:
    with job_processes(lease, job, work / "logs", limits.probe_bounds()) as group:
        lease.report(2, "probe")
        info = probe_to_publish(source, limits)
        group.arm(limits.work_bounds(info.duration_s))
        plan = plan_job(info)
        settings = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment,
                                  preset=cfg["X264_PRESET"], threads=int(cfg["X264_THREADS"]))
        chunks = plan_chunks(plan, info.duration_s, int(cfg["CHUNK_SEGMENTS"]))
        lease.report(4, "thumbnails")
        pipeline.make_stills(str(source), info, plan, work, group)
    return EncodeState(info, plan, settings, float(cfg["WATERMARK_STRENGTH"]), tuple(chunks))


def _enqueue_work(conn, vid: str, state: EncodeState, sealed: bytes, base: int) -> None:
    queue.forget(conn, vid, (VIDEO_CHUNK, VIDEO_AUDIO, VIDEO_REFERENCE, VIDEO_STORYBOARD))   # an earlier plan's, if any
    repo.drop_storyboard(conn, vid)                     # its sprites went with the earlier outputs
    repo.start_encode(conn, vid, state.to_json(), sealed,
                      [(r.name, c.index) for r in state.plan.rungs for c in state.chunks])
    if state.info.has_audio:
        queue.enqueue(conn, VIDEO_AUDIO, {}, subject=vid, priority=base + AUDIO_PRIORITY)
    for rung in reversed(state.plan.rungs):             # lowest first
        for c in state.chunks:
            queue.enqueue(conn, VIDEO_CHUNK, {"rung": rung.name, "chunk": c.index}, subject=vid,
                          priority=chunk_priority(state, rung.name, base))
    queue.enqueue(conn, VIDEO_STORYBOARD, {}, subject=vid, priority=base + STORYBOARD_PRIORITY)
    queue.enqueue(conn, VIDEO_REFERENCE, {}, subject=vid, priority=base + REFERENCE_PRIORITY)
    repo.set_video_status(conn, vid, "processing", encode_message(state, {}))


def build_reference(app, job: Job, lease: Lease) -> None:
    """The forensic reference from this worker's copy of the original (fetched again if
    it was evicted). The copy goes afterwards when no part of the video is left to run."""
    vid, fs = job.subject, filestore(app)
    with db.standalone() as conn:
        video = repo.video(conn, vid)
        enc = repo.encode_of(conn, vid)
    if video is None or video["status"] in repo.STOPPED or enc is None:
        return                              # deleted, failed or re-planned: nothing to build for
    p = EncodeState.from_json(enc.plan).plan
    geometry = geometry_from_metadata({"fps": f"{p.fps.numerator}/{p.fps.denominator}", "watermark": {
        "pattern_width": p.mezz_width, "pattern_height": p.mezz_height, "frames_per_segment": p.frames_per_segment,
        "source_color": p.color, "source_decoder": p.video_decoder}})
    original = local_original(app, job, lease, video)
    lease.report(10, "forensic reference")
    with tempfile.TemporaryDirectory(dir=app.config["WORK_DIR"], prefix=f"sv-ref-{vid[:8]}-") as work:
        store_reference(fs, vid, original, geometry, Path(work), db)
    if discard_if_deleted(db, fs, vid):
        raise LeaseLost(job.id)
    log.info("forensic reference ready", extra={"video_id": vid})
    drop_original_when_unneeded(app, vid, VIDEO_REFERENCE)


def drop_original_when_unneeded(app, vid: str, running: str) -> None:
    """This worker's copy of the original goes once no other job that reads it (but the
    caller's, ``running``) is left to run."""
    with db.standalone() as conn:
        left = queue.of_subject(conn, vid, tuple(k for k in ORIGINAL_READERS if k != running), ("queued", "running"))
    if not left:
        cache_of(app).drop(vid)


def remove_outputs(app, job: Job) -> None:
    """The video's derived objects and this worker's copy of its original."""
    filestore(app).delete_prefix(media_prefix(job.subject))
    cache_of(app).drop(job.subject)


def lost_unless(stopped: Callable[[object, str], bool]) -> Callable[[object, Job], None]:
    """An on_lost hook: another worker owns the job now (its outputs are its business), or
    the video ``stopped`` (deleted; for a video's parts also failed) while we worked: then
    whatever we stored after that is ours to remove."""
    def on_lost(app, job: Job) -> None:
        with db.standalone() as conn:
            gone = stopped(conn, job.subject)
        if gone:
            remove_outputs(app, job)
    return on_lost


on_lost = lost_unless(repo.video_gone)


def _cleanup(app, job: Job, exc: BaseException) -> None:
    remove_outputs(app, job)


def _on_retry(conn, job: Job, delay: int) -> None:
    repo.set_video_status(conn, job.subject, "queued", f"processing failed (attempt {job.attempts} of "
                                                       f"{job.max_attempts}); retrying in {delay} s")


def _on_wait(conn, job: Job, outage: str, delay: int) -> None:
    repo.set_video_status(conn, job.subject, "queued", f"processing paused: {outage}; retrying in {delay} s")


def failure_reason(exc: BaseException | None) -> str:
    return ("processing failed repeatedly; please re-upload" if exc is None
            else queue.error_text(exc) if isinstance(exc, InvalidMedia)
            else f"processing stopped, a limit was exceeded: {queue.error_text(exc)}"
            if isinstance(exc, LimitExceeded) else f"processing error: {queue.error_text(exc)}")


def _on_dead(conn, job: Job, exc: BaseException | None) -> None:
    repo.set_video_status(conn, job.subject, "failed", failure_reason(exc))
    webhooks.emit_video_event(conn, "video.failed", job.subject)


def _on_requeue(conn, job: Job) -> None:
    repo.set_video_status(conn, job.subject, "queued", "processing retried by an administrator")
    webhooks.allow_again(conn, "video.failed", job.subject)     # a second failure is news again


def still_wanted(conn, job: Job) -> bool:
    return not repo.video_gone(conn, job.subject)


PROCESS = Handler(run=plan_video, permanent=(InvalidMedia, LimitExceeded), cleanup=_cleanup,
                  on_retry=_on_retry, on_wait=_on_wait, on_dead=_on_dead, on_requeue=_on_requeue, on_lost=on_lost,
                  guard=still_wanted)
# Best effort: a failure retries, a dead reference leaves the video as it is.
REFERENCE = Handler(run=build_reference, on_lost=on_lost, guard=still_wanted)
