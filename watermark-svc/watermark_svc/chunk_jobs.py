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
manifests from it)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from svcommon import jobqueue as queue
from svcommon.jobqueue import Handler, Job, LeaseLost
from svcommon.jobworker import Lease
from svcommon.media_crypto import AUDIO, AUDIO_VARIANT, ContentSealer, VideoKeys
from svcommon.filestore import NotFound, media_prefix
from svcommon.media_keys import init_key, media_key
from svcommon.mediaprobe import MediaLimits

from . import repository as repo
from .encode_state import VIDEO_AUDIO, VIDEO_CHUNK, EncodeState, complete_rungs, encode_message, metadata, result_json
from .extensions import db, filestore
from .handlers import failure_reason, job_processes, on_lost, still_wanted
from .media import pipeline
from .media.abencode import VARIANTS
from .media.chunks import encode_audio, encode_chunk
from .media.errors import InvalidMedia, LimitExceeded, ProcessingError
from .media.procs import ProcessGroup
from .media_store import Segment, put_plain, put_sealed, stored_bytes
from .originals import cache_of


def _start(app, job: Job, lease: Lease, rung: str | None, index: int) -> tuple[dict, dict] | None:
    """The video and its plan, counting an encode; None when there is nothing to do (done)."""
    with db.standalone() as conn:
        video = repo.video(conn, job.subject)
        enc = repo.encode_of(conn, job.subject)
        fresh = enc is not None and (repo.count_encode(conn, job.subject, rung, index, lease.worker) if rung
                                     else enc["audio"] is None)
        conn.commit()
    if video is None or video["status"] == "deleting":
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
    state = EncodeState.from_json(enc["plan"])
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
        keys = ContentSealer(app.config["MEDIA_MASTER_KEY"]).open(enc["sealed"], vid)
        lease.confirm()                     # a full lease term for the uploads
        fs = filestore(app)
        _put_init(fs, vid, rung, out / "video" / rung / "init.mp4")
        for v in VARIANTS:
            for k in range(len(res.durations)):
                seg = Segment(rung, v, chunk.first_segment + k)
                put_sealed(fs, keys, seg, (out / seg.relative).read_bytes())
                lease.report(99, f"{rung} chunk {index}: store")
    _finish(app, job, lease, enc["sealed"], lambda conn: repo.finish_chunk(conn, vid, rung, index,
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
    state = EncodeState.from_json(enc["plan"])
    with tempfile.TemporaryDirectory(dir=app.config["WORK_DIR"], prefix=f"sv-audio-{vid[:8]}-") as work:
        out = Path(work) / "out"
        lease.report(5, "audio")
        audio = _run_media(app, job, lease, video, state, Path(work),
                           lambda source, group: encode_audio(source, out, group))
        keys: VideoKeys = ContentSealer(app.config["MEDIA_MASTER_KEY"]).open(enc["sealed"], vid)
        lease.confirm()
        fs = filestore(app)
        put_plain(fs, vid, "audio/init.mp4", out / "audio" / "init.mp4")
        for i in range(len(audio["segment_sizes"])):
            seg = Segment(AUDIO, AUDIO_VARIANT, i)
            put_sealed(fs, keys, seg, (out / seg.relative).read_bytes())
    _finish(app, job, lease, enc["sealed"], lambda conn: repo.finish_audio(conn, vid, audio) or True, None)


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
        if enc is None or enc["sealed"] != sealed or not record(conn) or not queue.complete(conn, job, lease.worker):
            conn.rollback()                 # re-planned, taken over or deleted meanwhile
            raise LeaseLost(job.id)
        state = EncodeState.from_json(enc["plan"])
        rows = repo.chunk_rows(conn, vid)
        ready = complete_rungs(state, rows)
        audio = enc["audio"]
        audio_ok = audio is not None or not state.info.has_audio
        message = encode_message(state, rows)
        if state.lowest.name in ready and audio_ok and (rung is None or rung in ready):
            # This completion completed a rung (or the audio): publish the ladder as it now is.
            meta = metadata(state, vid, rows, audio)
            if not repo.publish_media(conn, vid, meta, media_key(vid, "thumb.jpg"), sealed, stored_bytes(meta)):
                conn.rollback()
                raise LeaseLost(job.id)
        if len(ready) == len(state.plan.rungs) and audio_ok:
            message = ""
        repo.set_video_message(conn, vid, message)
        conn.commit()
    if not message:
        cache_of(app).drop(vid)             # all done: this worker's copy goes


PERMANENT = (InvalidMedia, LimitExceeded)


def _cleanup(app, job: Job, exc: BaseException) -> None:
    """Before the dead letter of a video that is not playable: its outputs go (a retry
    overwrites its own names instead)."""
    if isinstance(exc, PERMANENT) or job.attempts >= job.max_attempts:
        with db.standalone() as conn:
            video = repo.video(conn, job.subject)
        if video is not None and video["status"] != "ready":
            filestore(app).delete_prefix(media_prefix(job.subject))
            cache_of(app).drop(job.subject)


def _on_dead(conn, job: Job, exc: BaseException | None) -> None:
    """A part that cannot be done: a video not yet playable fails (its other waiting parts
    are dropped); a playable one stays playable with the rungs it has."""
    if repo.fail_unless_ready(conn, job.subject, failure_reason(exc)):
        repo.drop_encode_jobs(conn, job.subject, (VIDEO_CHUNK, VIDEO_AUDIO), only_queued=True)


CHUNK = Handler(run=run_chunk, permanent=PERMANENT, cleanup=_cleanup, on_dead=_on_dead, on_lost=on_lost,
                guard=still_wanted)
AUDIO_JOB = Handler(run=run_audio, permanent=PERMANENT, cleanup=_cleanup, on_dead=_on_dead,
                    on_lost=on_lost, guard=still_wanted)
