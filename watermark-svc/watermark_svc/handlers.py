"""The 'video.process' job (svcommon.jobqueue handler): fetch the original through file-svc,
run the media pipeline, store every output under media/{video_id}/ (segments only as
ciphertext: media_store), record the ladder and the sealed content secret and complete the
job in one transaction, mark the video ready. The hooks below keep the video's status in
step with the queue (retrying, failed) and remove partial outputs."""
from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

from svcommon import jobqueue as queue
from svcommon.filestore import FileStore, media_prefix
from svcommon.jobqueue import Handler, Job, LeaseLost
from svcommon.jobworker import Lease
from svcommon.media_crypto import ContentSealer
from svcommon.media_keys import media_key
from svcommon.mediaprobe import MediaLimits

from . import repository as repo
from .forensics.dbcatalogue import discard_if_deleted, geometry_from_metadata, store_reference
from .extensions import db, filestore
from .jobs import heartbeat
from .media import pipeline
from .media.errors import InvalidMedia, LimitExceeded, MediaError
from .media_store import discard_sealed, store_tree

log = logging.getLogger("watermark.handlers")


def process_video(app, job: Job, lease: Lease) -> None:
    cfg, fs = app.config, filestore(app)
    vid = job.subject
    with db.standalone() as conn:
        video = repo.video(conn, vid)
        repo.set_video_status(conn, vid, "processing", "processing started")
        conn.commit()
    if video is None or video["status"] == "deleting":
        raise LeaseLost(job.id)             # deleted meanwhile: on_lost removes what we wrote
    if not video["original_key"]:
        raise InvalidMedia("the video or its original no longer exists")
    with tempfile.TemporaryDirectory(dir=cfg["WORK_DIR"], prefix=f"sv-job-{vid[:8]}-") as work:
        work = Path(work)
        lease.report(1, "fetch")
        fs.download(video["original_key"], work / "original")
        # The pipeline reports 0-100; storing the outputs takes the last 5 %.
        try:
            meta = _process(cfg, work, vid, lease)
        except MediaError as exc:
            if lease.lost.is_set():         # cancelled: the children were killed on purpose
                raise LeaseLost(job.id) from exc
            raise
        _store(cfg, db, fs, job, lease, meta, work / "out")
        _prepare_forensics(app, db, fs, vid, work / "original", meta, work)


def _store(cfg, db, fs: FileStore, job: Job, lease: Lease, meta: dict, out: Path) -> None:
    """Seal the segments under a fresh content secret, upload, publish (media row, sealed
    secret, delivery_version 2 and the job's end in one transaction)."""
    vid = job.subject
    keys, sealed = ContentSealer(cfg["MEDIA_MASTER_KEY"]).new_secret(vid)
    # A killed earlier attempt left objects named under its own, lost secret: nothing would
    # ever name them again. Clear them, but only while the job is surely still ours.
    lease.confirm()
    fs.delete_prefix(media_prefix(vid))
    try:
        store_tree(fs, keys, out, meta, lambda done: lease.report(95 + 5 * done, "store"))
        with db.standalone() as conn:
            if not repo.publish_media(conn, vid, meta, media_key(vid, "thumb.jpg"), sealed) \
                    or not queue.complete(conn, job, lease.worker):
                conn.rollback()
                raise LeaseLost(job.id)
            conn.commit()
    except LeaseLost:
        # Taken over (its new owner stores the video under its own secret) or deleted:
        # what we stored under our names is ours to remove either way.
        try:
            discard_sealed(fs, keys, meta)
        except Exception as exc:     # never mask LeaseLost: the job is not ours to fail
            log.error("could not remove this attempt's sealed segments", extra={"video_id": vid, "error": str(exc)})
        raise


def _process(cfg, work: Path, vid: str, lease: Lease) -> dict:
    return pipeline.process(work / "original", work / "out", vid, cfg["WATERMARK_SECRET"].encode(),
                                strength=float(cfg["WATERMARK_STRENGTH"]), preset=cfg["X264_PRESET"],
                                progress=lambda pct, step: lease.report(pct * 0.95, step),
                                limits=MediaLimits.from_config(cfg), group_ready=lease.on_lost)


def _prepare_forensics(app, db, fs: FileStore, vid: str, original: Path, meta: dict, work: Path) -> None:
    """The video is ready; while its original is still on disk, build what a trace of a
    leak will need (analysis proxy + fingerprint). Best effort: a trace builds it
    itself if this fails, so a failure here never touches the video or the job. The job
    is finished, so its lease no longer shows the worker alive: beat here instead."""
    done = threading.Event()

    def keep_beating() -> None:
        while not done.wait(30):
            heartbeat(app)

    beat = threading.Thread(target=keep_beating, name="reference-heartbeat", daemon=True)
    beat.start()
    try:
        store_reference(fs, vid, original, geometry_from_metadata(meta), work)
        if not discard_if_deleted(db, fs, vid):
            log.info("forensic reference ready", extra={"video_id": vid})
    except Exception:
        log.exception("could not prepare the forensic reference", extra={"video_id": vid})
    finally:
        done.set()
        beat.join()


def _on_lost(app, job: Job) -> None:
    """Another worker owns the job now (its outputs are its business), or the video was
    deleted while we worked: then whatever we stored after the delete is ours to remove."""
    with db.standalone() as conn:
        gone = repo.video_gone(conn, job.subject)
    if gone:
        filestore(app).delete_prefix(media_prefix(job.subject))


def _cleanup(app, job: Job, exc: BaseException) -> None:
    filestore(app).delete_prefix(media_prefix(job.subject))


def _on_retry(conn, job: Job, delay: int) -> None:
    repo.set_video_status(conn, job.subject, "queued", f"processing failed (attempt {job.attempts} of "
                                                       f"{job.max_attempts}); retrying in {delay} s")


def _on_dead(conn, job: Job, exc: BaseException | None) -> None:
    reason = ("processing failed repeatedly; please re-upload" if exc is None
              else exc.reason if isinstance(exc, InvalidMedia)
              else f"processing stopped, a limit was exceeded: {str(exc).splitlines()[0][:300]}"
              if isinstance(exc, LimitExceeded) else f"processing error: {str(exc).splitlines()[0][:300]}")
    repo.set_video_status(conn, job.subject, "failed", reason)


def _on_requeue(conn, job: Job) -> None:
    repo.set_video_status(conn, job.subject, "queued", "processing retried by an administrator")


def _still_wanted(conn, job: Job) -> bool:
    return not repo.video_gone(conn, job.subject)


PROCESS = Handler(run=process_video, permanent=(InvalidMedia, LimitExceeded), cleanup=_cleanup,
                  on_retry=_on_retry, on_dead=_on_dead, on_requeue=_on_requeue, on_lost=_on_lost,
                  guard=_still_wanted)
