"""Consistency checker: ``python -m watermark_svc.fsck [--json] [--repair] [--grace SECONDS]``
(``make fsck``; docs/operations.md "Consistency check"). Reconciles MariaDB with the object
store and lists every finding:

- objects without rows: every object under the prefixes we store under (svcommon.filestore
  PREFIXES) must belong to a live row (its video, caption track, detection, tus tail);
- rows without objects: a ready video's original, thumbnail, init and sealed segments
  (named from its content secret), caption files, storyboard sprites, queued suspects;
- unfinished S3 multipart uploads no tus upload owns;
- states nothing will ever move: jobs whose lease lapsed and no worker took over, jobs of
  deleted subjects, videos queued/processing with no job, deletes stopped half-way,
  uploads abandoned past their expiry, detections without a job;
- expired password grants and download tickets (housekeeping).

Nothing younger than ``--grace`` (default 2 h; longer than any single upload request) is
judged, and nothing a live lease (job, tus write lock) or an unexpired upload owns is ever
a finding, so work in flight never is. ``--repair`` fixes what is safe (deletes orphans,
aborts orphan multipart uploads, requeues lapsed jobs, finishes stopped deletes and
abandoned uploads, drops rows whose object is gone where the row is optional) and reports
the rest for an operator. Exit status: 0 clean, 1 findings (after --repair: 1 only when
some remain unrepaired), 2 the check could not run."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from svcommon import jobqueue
from svcommon.filestore import (CAPTIONS, FORENSICS, MEDIA, ORIGINALS, PREFIXES, FileStore, NotFound,
                                captions_prefix, media_prefix, original_prefix)
from svcommon.media_crypto import ContentSealer
from svcommon.media_keys import audio_init_key, init_key
from svcommon.storyboards import VTT_NAME, Storyboard, sprite_name, storyboard_key

from .encode_state import VIDEO_AUDIO, VIDEO_CHUNK, VIDEO_REFERENCE, VIDEO_STORYBOARD
from .media_store import segments
from .repository import fsck as repo

log = logging.getLogger("watermark.fsck")
VIDEO_KINDS = (jobqueue.VIDEO_PROCESS, VIDEO_AUDIO, VIDEO_CHUNK, VIDEO_REFERENCE, VIDEO_STORYBOARD)
DEFAULT_GRACE = 7200
INCONSISTENCY, HOUSEKEEPING = "inconsistency", "housekeeping"


@dataclass
class Finding:
    kind: str                 # what is wrong (docs/operations.md lists every kind)
    subject: str              # the object key, job, video, detection or session concerned
    detail: str               # one sentence for a person
    repair: str = ""          # what --repair does about it ("" = nothing: an operator's call)
    severity: str = INCONSISTENCY
    repaired: bool = False
    error: str = ""           # why a repair attempt failed
    video: str = ""           # the video concerned, if any (re-checked before reporting)
    facts: dict = field(default_factory=dict)   # what the repair needs (an upload's ids)


@dataclass
class Context:
    conn: object
    fs: FileStore
    sealer: ContentSealer
    grace: float
    now: datetime             # UTC, naive (what the DATETIME columns hold)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)


def _old(ctx: Context, when: datetime | None) -> bool:
    return when is not None and when < ctx.now - timedelta(seconds=ctx.grace)


def _video_of(key: str, prefix: str) -> str:
    return key[len(prefix):].split("/", 1)[0]


# ---- the store against the database ---------------------------------------------------------
def orphan_objects(ctx: Context, videos: dict, stored: dict[str, datetime | None]) -> list[Finding]:
    """Objects no row accounts for, older than the grace (a write whose row is not committed
    yet is in flight). ``stored``: every object listed, with its time."""
    out = []
    captions = repo.caption_keys(ctx.conn)
    detections = repo.detections(ctx.conn)
    for key in sorted(stored):
        if not _old(ctx, stored[key]):
            continue
        why = None
        if key.startswith(ORIGINALS) or key.startswith(MEDIA):
            vid = _video_of(key, ORIGINALS if key.startswith(ORIGINALS) else MEDIA)
            video = videos.get(vid)
            if video is None:
                why = "its video no longer exists"
            elif key.startswith(ORIGINALS) and key not in (video["original_key"], video["tail_key"], video["upload_key"]):
                why = "not the video's original nor its upload's current tail"
        elif key.startswith(CAPTIONS):
            if key not in captions:
                why = "no caption track row names it"
        elif key.startswith(FORENSICS):
            parts = key[len(FORENSICS):].split("/")
            det = detections.get(parts[1]) if len(parts) > 2 and parts[0] == "detections" else None
            if det is None:
                why = "no detection row owns it"
        if why:
            out.append(Finding("orphan_object", key, why, "delete the object"))
    return out


def orphan_multipart(ctx: Context) -> list[Finding]:
    """Unfinished multipart uploads no tus upload owns, begun before the grace (a streaming PUT
    in flight is younger; a finished or failed one aborts its own)."""
    live = repo.live_upload_ids(ctx.conn)
    out = []
    for prefix in PREFIXES:
        for up in ctx.fs.list_multipart(prefix):
            if up["upload_id"] not in live and _old(ctx, _parse_time(up.get("initiated"))):
                out.append(Finding("orphan_multipart", up["key"], f"unfinished multipart upload {up['upload_id']} "
                                   "that no upload owns", "abort it", facts={"upload_id": up["upload_id"]}))
    return out


# ---- the database against the store ---------------------------------------------------------
def missing_objects(ctx: Context, videos: dict, stored: dict[str, datetime | None]) -> list[Finding]:
    """Rows whose objects are not in the store (``videos``: those not being deleted)."""
    keys = stored.keys()
    out = []

    def need(key: str | None, kind: str, subject: str, what: str, repair: str = "", video: str = "") -> None:
        if key and key not in keys:
            out.append(Finding(kind, subject, f"{what} {key} is missing", repair, video=video))

    for vid, v in videos.items():
        if v["status"] in ("queued", "processing", "ready") and v["original_key"]:
            need(v["original_key"], "missing_original", vid, "the original", video=vid)
        if v["status"] == "ready":
            need(v["thumbnail_key"], "missing_media", vid, "the thumbnail", video=vid)
    for row in repo.published_media(ctx.conn):
        vid, meta = row["video_id"], json.loads(row["metadata"])
        for r in meta.get("renditions") or []:
            need(init_key(vid, r["name"]), "missing_media", vid, "the init segment", video=vid)
        if meta.get("audio"):
            need(audio_init_key(vid), "missing_media", vid, "the audio init segment", video=vid)
        if int(row["delivery_version"]) == 2 and row["content_secret_enc"]:
            video_keys = ctx.sealer.open(bytes(row["content_secret_enc"]), vid)
            gone = [s for s in segments(meta) if s.sealed_key(video_keys) not in keys]
            if gone:
                out.append(Finding("missing_media", vid, f"{len(gone)} of the video's sealed segments are missing "
                                   f"(first: {gone[0].sealed_key(video_keys)})", video=vid))
    for cap in repo.caption_keys(ctx.conn).values():
        if cap["video_id"] in videos:
            need(cap["object_key"], "missing_caption", cap["id"], "the caption file", "delete the caption track row",
                 cap["video_id"])
    for row in repo.storyboards(ctx.conn):
        board = Storyboard.from_json(row["metadata"])
        names = [sprite_name(n) for n in range(1, board.sprites + 1)] + [VTT_NAME]
        if any(storyboard_key(row["video_id"], n) not in keys for n in names):
            out.append(Finding("missing_storyboard", row["video_id"], "storyboard sprites or track missing",
                               "drop the storyboard row (the video plays without previews; "
                               "python -m watermark_svc.storyboards makes it again)", video=row["video_id"]))
    for det in repo.detections(ctx.conn).values():
        if det["status"] in ("queued", "running"):
            need(det["suspect_key"], "missing_suspect", det["id"], "the suspect file")
    return out


# ---- states nothing will move ---------------------------------------------------------------
def stuck_states(ctx: Context) -> list[Finding]:
    c, g = ctx.conn, ctx.grace
    out = [Finding("stale_lease", j["id"], f"{j['kind']} job of {j['subject']}: lease of {j['lease_owner']} lapsed "
                   f"at {j['lease_expires']:%Y-%m-%d %H:%M:%S} and no worker took it over",
                   "queue it again" if j["attempts"] < j["max_attempts"] else "")
           for j in repo.stale_leases(c, g)]
    out += [Finding("orphan_job", j["id"], f"{j['status']} {j['kind']} job of {j['subject']}, which no longer exists",
                    "delete the job") for j in repo.orphan_jobs(c, VIDEO_KINDS, jobqueue.DETECTION_RUN, g)]
    for v in repo.stuck_videos(c, g):
        if v["status"] == "deleting":
            out.append(Finding("stuck_delete", v["id"], "video delete stopped half-way",
                               "delete its objects, then its rows"))
        else:
            out.append(Finding("stuck_video", v["id"], f"video {v['status']} with no job left to move it "
                               "(an administrator's retry of its dead job, or a new upload)"))
    for u in repo.abandoned_uploads(c, g):
        what = "tus upload past its expiry" if u["upload_id"] else "upload whose request ended without a result"
        out.append(Finding("abandoned_upload", u["video_id"], what, "abort it, delete its objects and its rows",
                           facts={k: u[k] for k in ("upload_id", "object_key", "s3_upload_id", "status")}))
    out += [Finding("stuck_detection", d["id"], f"detection {d['status']} with no job to run it", "mark it failed")
            for d in repo.stuck_detections(c, g, jobqueue.DETECTION_RUN)]
    out += [Finding("expired_grant", f"{r['user_id']}/{r['video_id']}", f"password grant expired {r['expires_at']}",
                    "delete it", HOUSEKEEPING) for r in repo.expired_grants(c, g)]
    out += [Finding("expired_ticket", r["id"], f"download ticket never used, expired {r['download_expires_at']}",
                    "clear its hash", HOUSEKEEPING) for r in repo.expired_tickets(c, g)]
    return out


# ---- repairs --------------------------------------------------------------------------------
def _remove_video(ctx: Context, vid: str, upload: dict | None) -> None:
    """What upload-svc's delete does (ingest.remove_video), for a delete or an upload nobody
    will finish: marked deleting, the objects, then the rows."""
    repo.mark_deleting(ctx.conn, vid)
    ctx.conn.commit()
    if upload and upload.get("upload_id") and upload["status"] != "done":
        ctx.fs.abort_multipart(upload["object_key"], upload["s3_upload_id"])
    for prefix in (original_prefix(vid), media_prefix(vid), captions_prefix(vid)):
        ctx.fs.delete_prefix(prefix)
    repo.delete_video(ctx.conn, vid)


def repair(ctx: Context, f: Finding) -> None:
    c = ctx.conn
    if f.kind == "orphan_object":
        try:
            ctx.fs.delete(f.subject)
        except NotFound:
            pass
    elif f.kind == "orphan_multipart":
        ctx.fs.abort_multipart(f.subject, f.facts["upload_id"])
    elif f.kind == "stale_lease":
        if not jobqueue.release_lapsed(c, f.subject, ctx.grace):
            raise RuntimeError("the job moved meanwhile")
    elif f.kind == "orphan_job":
        repo.delete_job_if_idle(c, f.subject)
    elif f.kind == "stuck_delete":
        _remove_video(ctx, f.subject, None)
    elif f.kind == "abandoned_upload":
        _remove_video(ctx, f.subject, f.facts)
    elif f.kind == "stuck_detection":
        repo.fail_detection(c, f.subject, "lost: no job was left to run it (fsck --repair)")
    elif f.kind == "missing_caption":
        repo.delete_caption(c, f.subject)
    elif f.kind == "missing_storyboard":
        repo.delete_storyboard(c, f.subject)
    elif f.kind == "expired_grant":
        user_id, video_id = f.subject.split("/")
        repo.delete_grant(c, user_id, video_id)
    elif f.kind == "expired_ticket":
        repo.clear_ticket(c, f.subject)
    else:
        return
    c.commit()
    f.repaired = True


# ---- the run --------------------------------------------------------------------------------
def _list_store(fs: FileStore) -> dict[str, datetime | None]:
    """Every object under the prefixes we store under, with its time in the store."""
    return {item["key"]: _parse_time(item.get("last_modified")) for prefix in PREFIXES for item in fs.list(prefix)}


def check(ctx: Context) -> list[Finding]:
    """Every finding, database first, store second: an object written between the two reads
    has its row already (or is younger than the grace), so it never looks orphaned; a row
    whose object was removed between them is deleting (skipped) or a real finding."""
    conn = ctx.conn
    findings = stuck_states(ctx)
    videos = repo.videos(conn)
    conn.commit()                         # a fresh snapshot for the store comparison below
    stored = _list_store(ctx.fs)
    findings += orphan_objects(ctx, videos, stored)
    missing = missing_objects(ctx, {k: v for k, v in videos.items() if v["status"] != "deleting"}, stored)
    conn.commit()
    # A video deleted (or a caption track removed) while the store was listed lost its
    # objects first: only what is still there, and not being deleted, now is a finding.
    fresh, captions = repo.videos(conn), repo.caption_keys(conn)
    live_captions = {c["id"] for c in captions.values()}
    findings += [f for f in missing if (not f.video or fresh.get(f.video, {}).get("status") not in (None, "deleting"))
                 and (f.kind != "missing_caption" or f.subject in live_captions)]
    findings += orphan_multipart(ctx)
    conn.commit()
    return findings


def client(cfg) -> FileStore:
    """file-svc as the checker's own identity (read and delete on every prefix)."""
    return FileStore(cfg["FILE_SVC_URL"], cfg["AUTH_SVC_URL"], "fsck", cfg["SERVICE_SECRET_FSCK"])


def exit_status(findings: list[Finding]) -> int:
    """1 while an inconsistency is left; expired rows (housekeeping) alone are a healthy
    stack's normal state, so monitoring that runs the checker is not woken by them."""
    return 1 if any(not f.repaired and f.severity == INCONSISTENCY for f in findings) else 0


def run(app, fs: FileStore, grace: float, do_repair: bool) -> list[Finding]:
    """Check (and with ``do_repair`` repair) on one connection of ``app``'s pool."""
    from .extensions import db
    with app.app_context(), db.standalone() as conn:
        ctx = Context(conn, fs, ContentSealer(app.config["MEDIA_MASTER_KEY"]), grace, repo.db_now(conn))
        findings = check(ctx)
        if do_repair:
            for f in findings:
                if f.repair:
                    try:
                        repair(ctx, f)
                    except Exception as exc:     # one failed repair never stops the others
                        conn.rollback()
                        f.error = str(exc)[:300]
    return findings


def render_text(findings: list[Finding], repaired_run: bool) -> str:
    if not findings:
        return "fsck: clean (database and object store agree)"
    lines = []
    for f in findings:
        state = (" [repaired]" if f.repaired else f" [repair failed: {f.error}]" if f.error
                 else " [not repaired]" if repaired_run else "")
        fix = f" (--repair: {f.repair})" if f.repair and not repaired_run else ""
        lines.append(f"{f.kind:18} {f.subject}  {f.detail}{fix}{state}")
    left = sum(1 for f in findings if not f.repaired)
    lines.append(f"fsck: {len(findings)} finding(s)" + (f", {len(findings) - left} repaired, {left} left"
                                                          if repaired_run else "")
                 + (" (housekeeping only: no inconsistency)" if not exit_status(findings) and left else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m watermark_svc.fsck", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--repair", action="store_true", help="fix what is safe to fix")
    ap.add_argument("--grace", type=float, default=DEFAULT_GRACE,
                    help=f"seconds: nothing younger is judged (default {DEFAULT_GRACE})")
    args = ap.parse_args(argv)
    from . import create_app
    app = create_app()
    if not app.config.get("SERVICE_SECRET_FSCK"):
        print("fsck: SERVICE_SECRET_FSCK is not set (the checker's file-svc identity)", file=sys.stderr)
        return 2
    try:
        findings = run(app, client(app.config), max(0.0, args.grace), args.repair)
    except Exception as exc:
        log.exception("fsck could not run")
        print(f"fsck: could not run: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"clean": not findings, "repair": args.repair, "grace_seconds": args.grace,
                          "findings": [asdict(f) for f in findings]}, indent=1))
    else:
        print(render_text(findings, args.repair))
    return exit_status(findings)


if __name__ == "__main__":
    raise SystemExit(main())
