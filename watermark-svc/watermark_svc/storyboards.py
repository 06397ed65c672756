"""The 'video.storyboard' job: seek-preview sprites and their WebVTT thumbnail track
(svcommon.storyboards; media.storyboard makes them) from the worker's copy of the original,
stored under media/{video}/storyboard/, then the video_storyboards row and the job's
completion in one transaction. Planned with the video (handlers.py) after its chunks, at
STORYBOARD_PRIORITY: never in the way of a video becoming playable. Best effort: a failure
retries (the retry overwrites the same names), a dead job removes its sprites and leaves the
video as it is — it plays without previews.

Videos processed before storyboards existed get theirs from
``python -m watermark_svc.storyboards [--video ID] [--dry-run]``, which queues this job for
every ready video without one (the workers then make them)."""
from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
from pathlib import Path

from svcommon import jobqueue as queue
from svcommon.jobqueue import Handler, Job, LeaseLost
from svcommon.jobworker import Lease
from svcommon.mediaprobe import MediaLimits
from svcommon.storyboards import VTT_NAME, sprite_name, storyboard_key, storyboard_prefix

from . import repository as repo
from .encode_state import STORYBOARD_PRIORITY, VIDEO_STORYBOARD
from .extensions import db, filestore
from .handlers import drop_original_when_unneeded, job_processes, local_original, on_lost, still_wanted
from .media.errors import InvalidMedia, LimitExceeded
from .media.probe import probe
from .media.storyboard import make_storyboard
from .media_store import put_plain

log = logging.getLogger("watermark.storyboards")
VIDEO_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def build_storyboard(app, job: Job, lease: Lease) -> None:
    vid, fs, cfg = job.subject, filestore(app), app.config
    with db.standalone() as conn:
        video = repo.video(conn, vid)
    if video is None or video["status"] in repo.STOPPED:
        return                              # deleted or failed: nothing to preview
    source = local_original(app, job, lease, video)
    limits = MediaLimits.from_config(cfg)
    with tempfile.TemporaryDirectory(dir=cfg["WORK_DIR"], prefix=f"sv-story-{vid[:8]}-") as work:
        work = Path(work)
        with job_processes(lease, job, work / "logs", limits.probe_bounds()) as group:
            lease.report(5, "storyboard")
            info = probe(source, limits)
            group.arm(limits.work_bounds(info.duration_s))
            board, sprites = make_storyboard(str(source), info, work / "out", group)
        lease.confirm()                     # a full lease term for the uploads
        for n, path in enumerate(sprites, 1):
            put_plain(fs, vid, f"storyboard/{sprite_name(n)}", path)
        track = board.vtt(info.duration_s).encode()
        fs.put_stream(storyboard_key(vid, VTT_NAME), track, length=len(track), content_type="text/vtt")
    with db.standalone() as conn:
        stored = repo.store_storyboard(conn, vid, board.to_json())
        if stored and queue.complete(conn, job, lease.worker):
            conn.commit()
        else:
            conn.rollback()
            if not stored:                  # deleted or failed meanwhile: ours to remove
                fs.delete_prefix(storyboard_prefix(vid))
            raise LeaseLost(job.id)         # (taken over: the new owner writes the same names)
    log.info("storyboard ready", extra={"video_id": vid, "sprites": board.sprites, "interval": board.interval})
    drop_original_when_unneeded(app, vid, VIDEO_STORYBOARD)


def _cleanup(app, job: Job, exc: BaseException) -> None:
    """Before a retry or the dead letter: this attempt's sprites go (never a stored storyboard's)."""
    with db.standalone() as conn:
        kept = repo.has_storyboard(conn, job.subject)
    if not kept:
        filestore(app).delete_prefix(storyboard_prefix(job.subject))


# No on_dead hook: a video without a storyboard plays as before.
STORYBOARD = Handler(run=build_storyboard, permanent=(InvalidMedia, LimitExceeded), cleanup=_cleanup,
                     on_lost=on_lost, guard=still_wanted)


def queue_missing(conn, video_id: str | None = None) -> list[str]:
    """Queue a storyboard job for each ready video (or ``video_id``) that has no storyboard
    and none queued or running; the videos queued."""
    queued = []
    for vid in repo.ready_without_storyboard(conn, video_id):
        if not queue.of_subject(conn, vid, (VIDEO_STORYBOARD,), ("queued", "running")):
            queue.enqueue(conn, VIDEO_STORYBOARD, {}, subject=vid, priority=STORYBOARD_PRIORITY)
            queued.append(vid)
    return queued


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watermark_svc.storyboards",
                                     description="Queue seek-preview storyboards for ready videos that have none "
                                                 "(processed before storyboards, or whose storyboard job failed). "
                                                 "The workers make them.")
    parser.add_argument("--video", metavar="ID", help="only this video (32 hex); default: every such video")
    parser.add_argument("--dry-run", action="store_true", help="list the videos; queue nothing")
    args = parser.parse_args(argv)
    if args.video is not None and not VIDEO_ID_RE.match(args.video):
        print(f"--video must be a video id (32 lowercase hex), not {args.video!r}", file=sys.stderr)
        return 1
    from . import create_app
    app = create_app()
    with app.app_context(), db.standalone() as conn:
        if args.dry_run:
            vids = repo.ready_without_storyboard(conn, args.video)
        else:
            vids = queue_missing(conn, args.video)
            conn.commit()
    for vid in vids:
        print(f"{vid}: {'would queue' if args.dry_run else 'queued'}", flush=True)
    print(f"{len(vids)} video(s) {'without a storyboard' if args.dry_run else 'queued'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
