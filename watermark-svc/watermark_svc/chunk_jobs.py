"""The jobs a planned video is made of (handlers.py plans them; their shared state is
encode_state.EncodeState in video_encodes, repository/chunks.py):

'video.chunk' {rung, chunk}: encode one rung of one chunk (media.chunks.encode_chunk) from
the worker's local copy of the original, store its segments sealed under their final
keyed names (the plan's content secret) and its init segment, then record its result and
complete the job in one transaction. A done chunk is never encoded again; a failed or
killed one is retried alone (same names, same secret: its retry overwrites whatever it
stored). 'video.audio': the audio, likewise.

Every completion locks the plan row first, so exactly one transaction sees a rung (or the
audio) become complete and publishes it: the lowest rung together with the audio makes
the video ready (playable), each higher rung joins the published ladder when its last
chunk is done (video_media.metadata lists only complete rungs, streaming-svc builds
manifests from it). A part that dies fails a video not yet playable: its parts still
running elsewhere stop at their next renewal (the guard treats 'failed' like 'deleting')
and remove what they stored. On a playable video the dead part's rung is given up: the
note stays, and the ladder is final (ladder_complete) once the other rungs are done."""
from __future__ import annotations

import tempfile
from pathlib import Path

from svcommon import jobqueue as queue
from svcommon import webhooks
from svcommon.jobqueue import Handler, Job, LeaseLost, WorkerLost
from svcommon.jobworker import Lease
from svcommon.media_crypto import AUDIO, AUDIO_VARIANT, ContentSealer, VideoKeys
from svcommon.filestore import NotFound
from svcommon.media_keys import init_key, media_key
from svcommon.mediaprobe import MediaLimits

from . import repository as repo
from .encode_state import (VIDEO_AUDIO, VIDEO_CHUNK, VIDEO_REFERENCE, VIDEO_STORYBOARD, EncodeState, complete_rungs,
                           encode_message, metadata, result_json)
from .extensions import db, filestore
from .handlers import failure_reason, job_processes, lost_unless, remove_outputs
from .media import pipeline
from .media.abencode import VARIANTS
from .media.chunks import encode_audio, encode_chunk
from .media.errors import InvalidMedia, LimitExceeded, ProcessingError
from .media.procs import ProcessGroup
from .media_store import Segment, put_plain, put_sealed, stored_bytes
from .originals import cache_of


def _start(app, job: Job, lease: Lease, rung: str | None, index: int) -> tuple[dict, repo.EncodeRow] | None:
    """The video and its plan, counting an encode; None when there is nothing to do (done)."""
    with db.standalone() as conn:
        video = repo.video(conn, job.subject)
        enc = repo.encode_of(conn, job.subject)
        fresh = enc is not None and (repo.count_encode(conn, job.subject, rung, index, lease.worker) if rung
                                     else enc.audio is None)
        conn.commit()
    if video is None or video["status"] in repo.STOPPED:
        raise LeaseLost(job.id)
    if enc is None:
        raise InvalidMedia("the video's processing plan no longer exists")
    return (video, enc) if fresh else None


def run_chunk(app, job: Job, lease: Lease) -> None:
    vid, rung, index = job.subject, job.payload["rung"], int(job.payload["chunk"])
    started = _start(app, job, lease, rung, index)
    if started is None:
        return                              # done before (a re-delivered job): never redone
    video, enc = started
    state = EncodeState.from_json(enc.plan)
    chunk = state.chunks[index]
    first = chunk.first_frame
    count = chunk.frame_count or max(1, int(state.info.duration_s * state.plan.fps) - first)
    # The whole path's guard: a crafted timeline (far more frames than the duration allows) stops.
    guard = pipeline.frame_guard(state.info, state.plan, lambda pct: None)

    def on_frame(n: int) -> None:
        guard(n)
        lease.report(min(99.0, 100 * (n - first) / count), f"{rung} chunk {index}")

    with tempfile.TemporaryDirectory(dir=app.config["WORK_DIR"], prefix=f"sv-chunk-{vid[:8]}-") as work:
        out = Path(work) / "out"

        def encode(source: Path, group: ProcessGroup):
            return encode_chunk(source, state.plan, state.settings, app.config["WATERMARK_SECRET"].encode(),
                                vid, state.strength, [state.rung(rung)], chunk, out, group, on_frame)

        res = _run_media(app, job, lease, video, state, Path(work), encode)
        keys = ContentSealer(app.config["MEDIA_MASTER_KEY"]).open(enc.sealed, vid)
        lease.confirm()                     # a full lease term for the uploads
        fs = filestore(app)
        _put_init(fs, vid, rung, out / "video" / rung / "init.mp4")
        for v in VARIANTS:
            for k in range(len(res.durations)):
                seg = Segment(rung, v, chunk.first_segment + k)
                put_sealed(fs, keys, seg, (out / seg.relative).read_bytes())
                lease.report(99, f"{rung} chunk {index}: store")
    _finish(app, job, lease, enc.sealed, lambda conn: repo.finish_chunk(conn, vid, rung, index,
                                                                        result_json(res, rung)), rung)


def _put_init(fs, vid: str, rung: str, init: Path) -> None:
    """The rung's init segment, the same for every chunk: stored by the first, compared by
    the others (a chunk encoded differently must not join the stream)."""
    try:
        stored = fs.get_bytes(init_key(vid, rung))
    except NotFound:
        stored = None
    if stored is None:
        put_plain(fs, vid, f"video/{rung}/init.mp4", init)
    elif stored != init.read_bytes():
        raise ProcessingError("package", f"{rung}: this chunk's init segment differs from the stored one")


def run_audio(app, job: Job, lease: Lease) -> None:
    vid = job.subject
    started = _start(app, job, lease, None, 0)
    if started is None:
        return
    video, enc = started
    state = EncodeState.from_json(enc.plan)
    with tempfile.TemporaryDirectory(dir=app.config["WORK_DIR"], prefix=f"sv-audio-{vid[:8]}-") as work:
        out = Path(work) / "out"
        lease.report(5, "audio")
        info = state.info
        audio = _run_media(app, job, lease, video, state, Path(work),
                           lambda source, group: encode_audio(source, out, info.duration_s, group, info.audio_index))
        keys: VideoKeys = ContentSealer(app.config["MEDIA_MASTER_KEY"]).open(enc.sealed, vid)
        lease.confirm()
        fs = filestore(app)
        put_plain(fs, vid, "audio/init.mp4", out / "audio" / "init.mp4")
        for i in range(len(audio["segment_sizes"])):
            seg = Segment(AUDIO, AUDIO_VARIANT, i)
            put_sealed(fs, keys, seg, (out / seg.relative).read_bytes())
    _finish(app, job, lease, enc.sealed, lambda conn: repo.finish_audio(conn, vid, audio), None)


def _run_media(app, job: Job, lease: Lease, video: dict, state: EncodeState, work: Path, task):
    limits = MediaLimits.from_config(app.config)
    source = cache_of(app).get(filestore(app), job.subject, video["original_key"])
    with job_processes(lease, job, work / "logs", limits.work_bounds(state.info.duration_s)) as group:
        return task(source, group)


def _finish(app, job: Job, lease: Lease, sealed: bytes, record, rung: str | None) -> None:
    """Record the result, complete the job and publish what became complete: one transaction."""
    vid = job.subject
    with db.standalone() as conn:
        enc = repo.lock_encode(conn, vid)
        if enc is None or enc.sealed != sealed or not record(conn) or not queue.complete(conn, job, lease.worker):
            conn.rollback()                 # re-planned, taken over or deleted meanwhile
            raise LeaseLost(job.id)
        # Read again after recording: the audio's own result is in this row, and whichever part
        # completes last must see every part done (the audio may well finish after the chunks).
        complete = _settle(conn, vid, repo.lock_encode(conn, vid), rung)
        if complete is None:
            conn.rollback()                 # failed or deleted meanwhile
            raise LeaseLost(job.id)
        # All done: this worker's copy of the original goes (unless the reference or the
        # storyboard still needs it).
        drop = complete and not queue.of_subject(conn, vid, (VIDEO_REFERENCE, VIDEO_STORYBOARD), ("queued", "running"))
        conn.commit()
    if drop:
        cache_of(app).drop(vid)


def _settle(conn, vid: str, enc: repo.EncodeRow, rung: str | None) -> bool | None:
    """With the plan row locked: publish the ladder if this part (``rung``, None for the
    audio) completed or gave up a rung of a playable video, and set the stage line (a given-up
    rung's note stays). True when every part is done, None when the video can no longer be
    published (failed or deleted). Decided from counts; results are read only to publish."""
    state = EncodeState.from_json(enc.plan)
    done = repo.done_counts(conn, vid)
    ready = complete_rungs(state, done)
    given_up = frozenset(j.payload["rung"] for j in queue.of_subject(conn, vid, (VIDEO_CHUNK,), ("dead",)))
    audio_ok = enc.audio is not None or not state.info.has_audio
    if state.lowest.name in ready and audio_ok and (rung is None or rung in ready or rung in given_up):
        first = not repo.video_ready(conn, vid)
        meta = metadata(state, vid, repo.chunk_rows(conn, vid), enc.audio, given_up)
        if not repo.publish_media(conn, vid, meta, media_key(vid, "thumb.jpg"), enc.sealed, stored_bytes(meta)):
            return None
        if first:                           # became playable: the webhook goes out with this commit
            webhooks.emit_video_event(conn, "video.ready", vid)
    complete = len(ready) == len(state.plan.rungs) and audio_ok
    if not given_up:
        repo.set_video_message(conn, vid, "" if complete else encode_message(state, done))
    return complete


PERMANENT = (InvalidMedia, LimitExceeded)


def _cleanup(app, job: Job, exc: BaseException) -> None:
    """Before the dead letter: a video not yet playable fails first, with the plan row
    locked (a sibling's completion can then no longer publish it), and its outputs go.
    A retry overwrites its own names instead."""
    if isinstance(exc, PERMANENT) or job.attempts >= job.max_attempts:
        with db.standalone() as conn:
            repo.lock_encode(conn, job.subject)
            failed = repo.fail_unless_ready(conn, job.subject,
                                            failure_reason(None if isinstance(exc, WorkerLost) else exc))
            conn.commit()
        if failed:
            remove_outputs(app, job)


def _on_dead(conn, job: Job, exc: BaseException | None) -> bool:
    """A part that cannot be done: a video not yet playable fails (its other waiting parts
    are dropped; running ones stop at their next renewal); a playable one stays playable.
    True when the video failed."""
    if repo.fail_unless_ready(conn, job.subject, failure_reason(exc)):
        queue.forget(conn, job.subject, (VIDEO_CHUNK, VIDEO_AUDIO, VIDEO_REFERENCE, VIDEO_STORYBOARD), only_queued=True)
        webhooks.emit_video_event(conn, "video.failed", job.subject)   # once, whichever part died first
        return True
    return False


def _on_dead_chunk(conn, job: Job, exc: BaseException | None) -> None:
    """A chunk's: as any part's, and a playable video's ladder is republished with the rungs
    it has (final once the others are done)."""
    if not _on_dead(conn, job, exc):
        enc = repo.lock_encode(conn, job.subject)
        if enc is not None:
            _settle(conn, job.subject, enc, job.payload["rung"])


def still_wanted(conn, job: Job) -> bool:
    """The lease guard: a deleted or failed video's parts stop."""
    return not repo.video_stopped(conn, job.subject)


on_lost = lost_unless(repo.video_stopped)   # a failed video's too: its cleanup ran before


CHUNK = Handler(run=run_chunk, permanent=PERMANENT, cleanup=_cleanup, on_dead=_on_dead_chunk, on_lost=on_lost,
                guard=still_wanted)
AUDIO_JOB = Handler(run=run_audio, permanent=PERMANENT, cleanup=_cleanup, on_dead=_on_dead,
                    on_lost=on_lost, guard=still_wanted)
