"""The consistency checker (watermark_svc.fsck, `make fsck`) against the real stack: each kind
of inconsistency made for real (an object deleted behind a ready video, an orphan object, an
abandoned multipart upload, a job whose worker vanished, a job of a deleted video, an expired
grant), reported, repaired where that is safe; while a live tus upload and a job under a live
lease are never findings, and a healthy video reports clean.

The healthy video is made the way a graceful stop makes one (ARCHITECTURE.md, Processing): a
real worker process is sent SIGTERM in the middle of a chunk job, hands the job back at once
(claimable immediately, its attempt not counted) and exits; another worker completes it."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import requests

from stack.environment import WORKER_CWD, for_service, worker_command
from svcommon import jobqueue
from svcommon.filestore import original_prefix
from tests.ingest_helpers import TUS, tus_metadata
from tests.support.media import ONE_RUNG
from tests.support.queue import own_queue
from tests.support.sealed_media import assert_sealed_only, keys_of
from tests.support.videos import queue_video, register_user, run_video, sql

CLIP_SECONDS = 4
CLIP_SIZE = ONE_RUNG
ROOT = Path(__file__).resolve().parents[1]


def fsck_cli(live_stack, *args: str) -> tuple[int, dict | str]:
    """The command as an operator runs it (exit status, stdout)."""
    env = {**for_service("fsck", live_stack["env"]), "PYTHONPATH": str(ROOT / "watermark-svc"), "LOG_LEVEL": "ERROR"}
    proc = subprocess.run([sys.executable, "-m", "watermark_svc.fsck", *args], cwd=ROOT / "watermark-svc", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout) if "--json" in args else proc.stdout


def fsck(worker_app, repair: bool = False) -> tuple[int, dict]:
    """The same check with no grace, in this process (saves a Python start per run): main()'s
    steps on the tests' watermark app, which has the stack's SERVICE_SECRET_FSCK."""
    from watermark_svc import fsck as checker
    findings = checker.run(worker_app, checker.client(worker_app.config), 0, repair)
    return checker.exit_status(findings), {"clean": not findings, "findings": [asdict(f) for f in findings]}


def mine(report: dict, *subjects: str) -> list[dict]:
    """Findings about this test's subjects only (other modules share the stack's database)."""
    return [f for f in report["findings"] if any(s in (f["subject"], f["video"]) or s in f["subject"] for s in subjects)]


@dataclass
class HandBack:
    video: str
    job: str                  # the chunk job running when the worker got SIGTERM
    exit_code: int
    stop_seconds: float       # SIGTERM to exit
    row: dict                 # the job's row right after the exit
    claimable: bool
    log: str


@pytest.fixture(scope="module")
def handed_back(live_stack, worker_app, mdb, stores, clip):
    """A video whose chunk job a real worker process handed back on SIGTERM, then completed by
    another worker (the tests' in-process one)."""
    owner = register_user(live_stack["url"], "fsck")
    env = {**for_service("worker", live_stack["env"]), "PYTHONPATH": WORKER_CWD, "WORKER_POLL_SECONDS": "0.1",
           "WORKER_LEASE_SECONDS": "60", "LOG_LEVEL": "INFO"}    # a lapse cannot explain a quick take-over
    with own_queue(mdb):
        vid = queue_video(mdb, stores, owner["id"], clip, title="fsck clip")
        proc = live_stack["procs"].start("handback-worker", worker_command(sys.executable), env,
                                         cwd=ROOT / WORKER_CWD)
        try:
            deadline, job = time.monotonic() + 120, None
            while job is None:
                assert time.monotonic() < deadline and proc.poll() is None, "the worker never ran a chunk job"
                job = sql(mdb, "SELECT id FROM jobs WHERE subject = %s AND kind = 'video.chunk' "
                               "AND status = 'running'", (vid,), one=True)
                time.sleep(0.02)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
            stopped = time.monotonic() - t0
        finally:
            live_stack["procs"].stop("handback-worker", grace=5)
        row = sql(mdb, "SELECT status, lease_owner, attempts, step FROM jobs WHERE id = %s", (job["id"],), one=True)
        claimable = bool(sql(mdb, f"SELECT id FROM jobs WHERE id = %s AND {jobqueue.CLAIMABLE}", (job["id"],)))
        run_video(worker_app, mdb, vid, "taker-" + uuid.uuid4().hex[:6])
    log = (live_stack["stack"].var / "logs" / "handback-worker.log").read_text(errors="replace")
    return owner, HandBack(vid, job["id"], code, stopped, row, claimable, log)


def test_worker_hands_its_job_back_on_sigterm(mdb, stores, service_config, handed_back):
    _, hb = handed_back
    assert hb.exit_code == 0 and hb.stop_seconds < 10, hb.log[-2000:]
    assert hb.row == {"status": "queued", "lease_owner": None, "attempts": 0, "step": "queued"}
    assert hb.claimable and "job handed back" in hb.log
    # Completed by the other worker, correctly: ready, every sealed segment there and opening.
    assert sql(mdb, "SELECT status FROM videos WHERE id = %s", (hb.video,), one=True)["status"] == "ready"
    assert sql(mdb, "SELECT status, attempts FROM jobs WHERE id = %s", (hb.job,), one=True) == \
        {"status": "done", "attempts": 1}
    assert assert_sealed_only(stores["watermark"], mdb, service_config["MEDIA_MASTER_KEY"], hb.video) > 0


def test_findings_reported_and_safely_repaired(live_stack, service_config, worker_app, mdb, stores, handed_back):
    owner, vid = handed_back[0], handed_back[1].video
    gw = live_stack["url"]
    headers = {"Authorization": f"Bearer {owner['access_token']}", **TUS}
    # Work in flight: a tus upload with some bytes stored (an S3 multipart upload and a tail
    # object), and a job under a live lease whose subject is gone. Neither may be touched.
    r = requests.post(f"{gw}/api/uploads", headers={**headers, "Upload-Length": "100000",
                                                    "Upload-Metadata": tus_metadata(filename="live.mp4")}, timeout=10)
    assert r.status_code == 201, r.text
    upload_url, live_vid = gw + r.headers["Location"], r.headers["X-Video-Id"]
    r = requests.patch(upload_url, data=b"\0" * 1000, timeout=10,
                       headers={**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204, r.text
    live_job = jobqueue.enqueue(mdb, jobqueue.VIDEO_PROCESS, {"video_id": "gone"}, subject=uuid.uuid4().hex)
    sql(mdb, "UPDATE jobs SET status = 'running', lease_owner = 'alive-worker', attempts = 1, "
             "lease_expires = UTC_TIMESTAMP(6) + INTERVAL 10 MINUTE WHERE id = %s", (live_job,))
    try:
        code, report = fsck(worker_app)
        assert mine(report, vid, live_vid, live_job) == [], report    # healthy and in-flight: clean

        # Now break things for real.
        keys = keys_of(mdb, service_config["MEDIA_MASTER_KEY"], vid)
        meta = json.loads(sql(mdb, "SELECT metadata FROM video_media WHERE video_id = %s", (vid,), one=True)["metadata"])
        rung = meta["renditions"][0]["name"]
        segment = f"media/{vid}/enc/{rung}/{keys.file_name(rung, 'a', 0)}"
        stores["watermark"].delete(segment)
        ghost = uuid.uuid4().hex
        orphan = f"media/{ghost}/poster.jpg"
        stores["watermark"].put_stream(orphan, b"jpeg", length=4)
        abandoned_key = original_prefix(ghost) + "original"
        abandoned = stores["upload"].create_multipart(abandoned_key)
        stale_job = jobqueue.enqueue(mdb, "video.storyboard", {"video_id": vid}, subject=vid, priority=-1000)
        sql(mdb, "UPDATE jobs SET status = 'running', lease_owner = 'dead-worker', attempts = 1, "
                 "run_after = UTC_TIMESTAMP(6) + INTERVAL 1 DAY, "
                 "lease_expires = UTC_TIMESTAMP(6) - INTERVAL 5 SECOND WHERE id = %s", (stale_job,))
        orphan_job = jobqueue.enqueue(mdb, jobqueue.VIDEO_PROCESS, {"video_id": ghost}, subject=ghost, delay=86400)
        sql(mdb, "INSERT INTO video_access_grants (user_id, video_id, granted_at, expires_at) VALUES "
                 "(%s, %s, UTC_TIMESTAMP(6) - INTERVAL 2 HOUR, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)", (owner["id"], vid))

        code, report = fsck(worker_app)
        assert code == 1 and not report["clean"]
        found = {(f["kind"], f["subject"]) for f in mine(report, vid, ghost, stale_job, orphan_job, live_vid, live_job)}
        assert found == {("missing_media", vid), ("orphan_object", orphan), ("orphan_multipart", abandoned_key),
                         ("stale_lease", stale_job), ("orphan_job", orphan_job),
                         ("expired_grant", f"{owner['id']}/{vid}")}, report
        code, text = fsck_cli(live_stack, "--grace", "0")            # the command says the same
        assert code == 1 and f"missing_media      {vid}" in text and "fsck: " in text.splitlines()[-1]

        code, report = fsck(worker_app, repair=True)
        assert code == 1                                     # the lost segment needs an operator
        state = {f["kind"]: f["repaired"] for f in mine(report, vid, ghost, stale_job, orphan_job)}
        assert state == {"missing_media": False, "orphan_object": True, "orphan_multipart": True,
                         "stale_lease": True, "orphan_job": True, "expired_grant": True}, report
        assert stores["watermark"].head(orphan) is None
        assert not [u for u in stores["upload"].list_multipart(original_prefix(ghost))]
        job = sql(mdb, "SELECT status, lease_owner, attempts FROM jobs WHERE id = %s", (stale_job,), one=True)
        assert job == {"status": "queued", "lease_owner": None, "attempts": 1}
        assert sql(mdb, "SELECT id FROM jobs WHERE id = %s", (orphan_job,)) == []
        assert sql(mdb, "SELECT * FROM video_access_grants WHERE video_id = %s", (vid,)) == []

        # Nothing in flight was touched: the live upload goes on, the leased job is its worker's.
        live = sql(mdb, "SELECT status, upload_offset, s3_upload_id, tail_key FROM uploads WHERE video_id = %s",
                   (live_vid,), one=True)
        assert live["status"] == "receiving" and live["upload_offset"] == 1000
        assert live["s3_upload_id"] in {u["upload_id"] for u in stores["upload"].list_multipart(original_prefix(live_vid))}
        assert live["tail_key"] is None or stores["upload"].head(live["tail_key"]) is not None
        assert sql(mdb, "SELECT status, lease_owner FROM jobs WHERE id = %s", (live_job,), one=True) == \
            {"status": "running", "lease_owner": "alive-worker"}
        r = requests.patch(upload_url, data=b"\0" * 1000, timeout=10,
                           headers={**headers, "Upload-Offset": "1000", "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204, r.text

        code, report = fsck_cli(live_stack, "--json", "--grace", "0")
        assert code == 1 and [(f["kind"], f["subject"]) for f in mine(report, vid, ghost, stale_job, orphan_job, live_vid, live_job)] \
            == [("missing_media", vid)]
    finally:
        sql(mdb, "DELETE FROM jobs WHERE id IN (%s, %s)", (live_job, locals().get("stale_job", live_job)))
        requests.delete(upload_url, headers=headers, timeout=10)


def test_exit_status_ignores_housekeeping_alone():
    """Expired grants are a healthy stack's normal state: only an inconsistency left is exit 1."""
    from watermark_svc.fsck import HOUSEKEEPING, Finding, exit_status, render_text
    grant = Finding("expired_grant", "u/v", "password grant expired", "delete it", HOUSEKEEPING)
    orphan = Finding("orphan_object", "media/x", "no row", "deletes it")
    assert exit_status([grant]) == 0 and exit_status([grant, orphan]) == 1
    assert exit_status([grant, Finding("orphan_object", "media/x", "no row", "deletes it", repaired=True)]) == 0
    assert render_text([grant], False).endswith("(housekeeping only: no inconsistency)")
