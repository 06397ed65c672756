"""Convert delivery-v1 videos (plaintext segments, processed before v2) to delivery v2:
``python -m watermark_svc.convert [--video ID] [--dry-run] [--wait SECONDS]``.

Per video, under a named MariaDB lock (one converter per video; no row lock is held while
file-svc works), every step resumable by re-running:
  1. seal and store a content secret if the row has none (commit) — a resumed run reuses
     it, so segments already encrypted keep their names;
  2. for each segment whose encrypted object is missing: read the plaintext, encrypt, put;
  3. check every encrypted object is there, then delete the plaintext segment objects;
  4. set delivery_version = 2 (commit).
The plaintext goes before the version flips (the spec's order is the reverse): under v2
nothing ever serves a v1 video's plaintext (streaming answers 503 media_converting), and
this way ``delivery_version = 1`` alone marks every video with work left, even one whose
run died between steps 3 and 4. A video deleted meanwhile: the conversion stops and
removes what it stored (the delete's own removal may have run before our last write).

The media workers run the same steps when idle (``convert_when_idle``), a slice of
WORKER_CONVERT_SLICE_SECONDS at a time, so ``docker compose up`` converts an existing
install with no manual step and an upload never waits long behind a conversion."""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable

from cryptography.exceptions import InvalidTag
from mysql.connector import errors as myerrors

from svcommon.filestore import FileStore, NotFound, media_prefix
from svcommon.media_crypto import ContentSealer

from . import repository as repo
from .media_store import (plain_segment_keys, put_sealed, plain_segment_removals, sealed_prefix, segments,
                          stored_keys)

log = logging.getLogger("watermark.convert")
VIDEO_ID_RE = re.compile(r"^[0-9a-f]{32}$")
PROGRESS_EVERY_S = 2.0          # progress line and deleted-meanwhile check
FAILED_RETRY_S = 600            # an idle worker leaves a video whose conversion failed this long
DONE_STATES = ("converted", "current", "gone", "dry-run")


@dataclass(frozen=True)
class Outcome:
    video_id: str
    state: str      # converted | current | gone | dry-run | paused | busy | failed
    message: str

    @property
    def ok(self) -> bool:
        return self.state in DONE_STATES


class ConversionError(Exception):
    """This video cannot be converted as it is (the message says why and what to do)."""


class _Gone(Exception):
    """The video was deleted (or is being deleted) while we converted it."""


def convert_video(app, db, fs: FileStore, vid: str, *, out: Callable[[str], None] = print,
                  lock_wait: float = 0, deadline: float | None = None, dry_run: bool = False) -> Outcome:
    """Convert one video (or, with ``deadline`` on time.monotonic(), as much as fits:
    state "paused"). Never raises for a per-video problem: the Outcome says it."""
    try:
        if dry_run:
            return _dry_run(app, db, fs, vid)
        try:
            with db.standalone() as lock_conn:
                got = repo.try_convert_lock(lock_conn, vid, lock_wait)
                lock_conn.commit()   # no snapshot held open for the whole conversion
                if not got:
                    return Outcome(vid, "busy", "another converter (a worker or this command) holds it; left alone")
                try:
                    return _convert(app, db, fs, vid, out, deadline)
                finally:
                    _release(lock_conn, vid)
        except _Gone:
            fs.delete_prefix(media_prefix(vid))
            return Outcome(vid, "gone", "deleted meanwhile; removed what the conversion had stored")
    except ConversionError as exc:
        return Outcome(vid, "failed", str(exc))
    except Exception as exc:         # file-svc or the database down: re-run later
        log.exception("conversion failed", extra={"video_id": vid})
        return Outcome(vid, "failed", f"{type(exc).__name__}: {exc}; nothing is lost, re-run to resume")


def _release(conn, vid: str) -> None:
    try:
        repo.release_convert_lock(conn, vid)
    except myerrors.Error:           # the connection died: the server released the lock with it
        pass


def _row(db, vid: str) -> dict | None:
    with db.standalone() as conn:
        return repo.media_for_conversion(conn, vid)


def _open_keys(app, vid: str, sealed: bytes):
    try:
        return ContentSealer(app.config["MEDIA_MASTER_KEY"]).open(sealed, vid)
    except InvalidTag:
        raise ConversionError("its stored content secret does not open with this MEDIA_MASTER_KEY "
                              "(another installation's key?); nothing was changed") from None


class _Slice:
    """An idle worker's time budget (``deadline`` on time.monotonic(); None = no limit).
    A slice always gets one unit of work done, so even a 0-s slice makes progress."""

    def __init__(self, deadline: float | None):
        self.deadline, self.done = deadline, 0

    def over(self) -> bool:
        return self.deadline is not None and self.done > 0 and time.monotonic() >= self.deadline


def _convert(app, db, fs: FileStore, vid: str, out, deadline: float | None) -> Outcome:
    row = _row(db, vid)
    if row is None:
        return Outcome(vid, "gone", "deleted, or never processed; nothing to convert")
    if row["delivery_version"] == 2:
        return Outcome(vid, "current", "already delivery v2; nothing to do")
    if row["content_secret_enc"] is None:
        _, sealed = ContentSealer(app.config["MEDIA_MASTER_KEY"]).new_secret(vid)
        with db.standalone() as conn:
            repo.store_content_secret(conn, vid, sealed)
            conn.commit()
        row = _row(db, vid)          # the stored one is the one that counts from now on
        if row is None:
            return Outcome(vid, "gone", "deleted meanwhile; nothing was stored")
    sealed = row["content_secret_enc"]
    if sealed is None or row["delivery_version"] != 1:
        raise ConversionError("its media row changed during the conversion; re-run")
    keys = _open_keys(app, vid, sealed)
    segs = segments(row["meta"])
    have = stored_keys(fs, sealed_prefix(vid))
    todo = [s for s in segs if s.sealed_key(keys) not in have]
    out(f"{vid}: {len(segs)} segments, {len(segs) - len(todo)} already encrypted, {len(todo)} to encrypt")
    budget = _Slice(deadline)
    if not _encrypt(db, fs, keys, todo, budget, out):
        _check_alive(db, vid)        # after our last write: see _check_alive
        return Outcome(vid, "paused", f"{budget.done} segments encrypted in this slice, "
                                      f"{len(todo) - budget.done} to go")
    missing = {s.sealed_key(keys) for s in segs} - stored_keys(fs, sealed_prefix(vid))
    if missing:
        raise ConversionError(f"{len(missing)} encrypted segments are not in the store after upload "
                              f"(e.g. {min(missing)}); re-run to resume")
    removals, removed = plain_segment_removals(fs, vid), 0
    while True:
        if budget.over():
            _check_alive(db, vid)
            return Outcome(vid, "paused", f"all segments encrypted; {removed} plaintext objects removed in this slice")
        step = next(removals, None)
        if step is None:
            break
        removed += step
        budget.done += 1
    with db.standalone() as conn:
        flipped = repo.mark_delivery_v2(conn, vid, sealed)
        conn.commit()
    if not flipped:
        _check_alive(db, vid)
        raise ConversionError("its content secret changed during the conversion; re-run")
    return Outcome(vid, "converted", f"{len(todo)} segments encrypted ({len(segs) - len(todo)} already were), "
                                     f"{removed} plaintext objects removed, delivery v2")


def _encrypt(db, fs: FileStore, keys, todo: list, budget: _Slice, out) -> bool:
    """Encrypt and store ``todo``; False when the slice ran out first."""
    vid, last = keys.video_id, time.monotonic()
    for n, seg in enumerate(todo, 1):
        if budget.over():
            return False
        try:
            plain = fs.get_bytes(seg.plain_key(vid))
        except NotFound:
            _check_alive(db, vid)
            raise ConversionError(f"{seg.plain_key(vid)} is missing and has no encrypted copy; "
                                  "the video must be uploaded again") from None
        put_sealed(fs, keys, seg, plain)
        budget.done += 1
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            last = time.monotonic()
            _check_alive(db, vid)
            out(f"{vid}: encrypted {n}/{len(todo)}")
    return True


def _check_alive(db, vid: str) -> None:
    """Raise _Gone when the video is deleted or being deleted. upload-svc commits its
    'deleting' mark before it removes the objects, so a write this read follows and that
    does not see the mark happened before the removal began: it is removed by that delete."""
    with db.standalone() as conn:
        if repo.video_gone(conn, vid):
            raise _Gone(vid)


def _dry_run(app, db, fs: FileStore, vid: str) -> Outcome:
    row = _row(db, vid)
    if row is None:
        return Outcome(vid, "gone", "deleted, or never processed; nothing to convert")
    if row["delivery_version"] == 2:
        return Outcome(vid, "current", "already delivery v2; nothing to do")
    segs = segments(row["meta"])
    done, secret = 0, "would seal and store a new content secret"
    if row["content_secret_enc"] is not None:
        keys = _open_keys(app, vid, row["content_secret_enc"])
        have = stored_keys(fs, sealed_prefix(vid))
        done, secret = sum(s.sealed_key(keys) in have for s in segs), "would reuse its stored content secret"
    plain = plain_segment_keys(fs, vid)
    return Outcome(vid, "dry-run", f"{secret}, encrypt {len(segs) - done} of {len(segs)} segments, "
                                   f"remove {len(plain)} plaintext objects, set delivery v2")


def convert_when_idle(app, db, fs: FileStore, held_back: dict[str, float]) -> bool:
    """A media worker with nothing else to do converts one slice of one v1 video.
    True when it did some work (the loop then looks for jobs at once, without sleeping).
    ``held_back`` (video id -> monotonic time) is the worker's memory of failed videos."""
    now = time.monotonic()
    with app.app_context():
        with db.standalone() as conn:
            candidates = repo.v1_videos(conn, limit=20)
        for vid in candidates:
            if held_back.get(vid, 0) > now:
                continue
            outcome = convert_video(app, db, fs, vid, out=log.info,
                                    deadline=now + float(app.config["WORKER_CONVERT_SLICE_SECONDS"]))
            if outcome.state == "busy":
                continue             # another worker (or the command) converts it: try the next
            if outcome.state == "failed":
                held_back[vid] = now + FAILED_RETRY_S
                log.error("conversion to delivery v2 failed", extra={"video_id": vid, "reason": outcome.message})
            else:
                log.info("conversion to delivery v2: %s", outcome.state,
                         extra={"video_id": vid, "detail": outcome.message})
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watermark_svc.convert",
                                     description="Convert videos processed before delivery v2 (plaintext "
                                                 "segments) to encrypted segments. Idempotent and resumable.")
    parser.add_argument("--video", metavar="ID", help="only this video (32 hex); default: every v1 video")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    parser.add_argument("--wait", type=float, default=60, metavar="SECONDS",
                        help="how long to wait for a video a worker is converting (default 60)")
    args = parser.parse_args(argv)
    if args.video is not None and not VIDEO_ID_RE.match(args.video):
        print(f"--video must be a video id (32 lowercase hex), not {args.video!r}", file=sys.stderr)
        return 1
    from . import create_app
    from .extensions import db, filestore
    app = create_app()
    fs = filestore(app)
    say = lambda line: print(line, flush=True)  # noqa: E731
    with app.app_context():
        if args.video:
            if _row(db, args.video) is None:
                say(f"{args.video}: failed: no processed video with this id")
                return 1
            ids = [args.video]
        else:
            with db.standalone() as conn:
                ids = repo.v1_videos(conn)
        say(f"{len(ids)} video(s) to convert{' (dry run: nothing is changed)' if args.dry_run else ''}")
        results = []
        for n, vid in enumerate(ids, 1):
            say(f"[{n}/{len(ids)}] {vid}")
            outcome = convert_video(app, db, fs, vid, out=say, lock_wait=args.wait, dry_run=args.dry_run)
            say(f"{vid}: {outcome.state}: {outcome.message}")
            results.append(outcome)
    bad = [o for o in results if not o.ok]
    say(f"done: {len(results) - len(bad)} ok, {len(bad)} not converted"
        + ("".join(f"\n  {o.video_id}: {o.state}: {o.message}" for o in bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
