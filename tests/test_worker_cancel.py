"""Cancellation: deleting a video while the worker processes it stops the job within
seconds (the lease renewal sees the job row gone and kills the ffmpeg process group),
frees the worker, and leaves nothing in S3, the database or the scratch folder."""
from __future__ import annotations

import os
import threading
import time

import pytest

from svcommon.db import query
from svcommon.filestore import media_prefix, original_prefix
from tests.support.media import make_clip
from tests.support.videos import connect_db, queue_video

# These tests know which row a worker claims: other tests' rows are held back meanwhile.
pytestmark = [pytest.mark.heavy, pytest.mark.usefixtures("own_jobs")]


def _our_children(marker: str) -> list[int]:
    """Processes whose command line names this job's scratch folder (its ffmpeg children)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_deleting_a_video_stops_its_job_within_seconds(worker_app, stores, db, owner_id, service_config, tmp_path):
    from upload_svc import repository as upload_repo
    from watermark_svc.jobs import run_once
    clip = make_clip(tmp_path / "clip.mp4", seconds=6).read_bytes()
    vid = queue_video(db, stores, owner_id, clip)
    preset = worker_app.config["X264_PRESET"]
    worker_app.config["X264_PRESET"] = "veryslow"          # still encoding when we delete
    marker = f"sv-job-{vid[:8]}"
    try:
        worker = threading.Thread(target=run_once, args=(worker_app, "cancel-test"))
        worker.start()
        deadline = time.monotonic() + 120
        while not (query(db, "SELECT step FROM jobs WHERE subject = %s", (vid,), one=True) or {}).get("step") == "encode" \
                or not _our_children(marker):
            assert worker.is_alive() and time.monotonic() < deadline
            time.sleep(0.2)
        # upload-svc's remove_video, in its order: mark it deleting, remove the objects, then the row.
        deleter = connect_db(service_config)
        deleter.autocommit = False
        try:
            upload_repo.mark_deleting(deleter, vid)
            deleter.commit()
            for prefix in (original_prefix(vid), media_prefix(vid)):
                stores["upload"].delete_prefix(prefix)
            upload_repo.delete_video(deleter, vid)
            deleter.commit()
        finally:
            deleter.close()
        deleted = time.monotonic()
        worker.join(30)
        assert not worker.is_alive()
        assert time.monotonic() - deleted < 15              # not the minutes veryslow would take
    finally:
        worker_app.config["X264_PRESET"] = preset
    assert _our_children(marker) == []
    assert not any(p.startswith(marker) for p in os.listdir(worker_app.config["WORK_DIR"]))
    assert list(stores["watermark"].list(media_prefix(vid))) == []
    assert query(db, "SELECT COUNT(*) AS n FROM jobs WHERE subject = %s", (vid,), one=True)["n"] == 0


def test_lost_lease_kills_children_even_when_progress_is_frozen(worker_app, stores, db, owner_id, clip_bytes,
                                                                tmp_path):
    """The 36000-s-gap case: ffmpeg busy, no progress reported. The lease thread alone must
    notice the deleted job and kill the process group."""
    import subprocess

    from svcommon import ffmpeg as ff
    from watermark_svc.extensions import db as wdb
    from svcommon.jobqueue import claim
    from svcommon.jobworker import Lease
    from upload_svc import repository as upload_repo
    from watermark_svc.handlers import PROCESS
    from watermark_svc.media.errors import ProcessingError
    from watermark_svc.media.procs import ProcessGroup
    vid = queue_video(db, stores, owner_id, clip_bytes)
    with worker_app.app_context():
        job = claim(wdb, "frozen", 3).job
        assert job.subject == vid
        group = ProcessGroup(tmp_path / "logs")
        with Lease(wdb, job, "frozen", 3, guard=PROCESS.guard) as lease:
            lease.on_lost(group)
            endless = group.start("endless", ff.base() + ["-re", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5",
                                                          "-f", "null", "-"], stdin=subprocess.DEVNULL)
            upload_repo.delete_video(db, vid)          # the video and its jobs
            deleted = time.monotonic()
            with pytest.raises(ProcessingError, match="cancelled"):
                group.wait_ok(endless, "encode", timeout=60)
            assert time.monotonic() - deleted < 10 and lease.lost.is_set()
        group.kill_all()


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("c") / "c.mp4", seconds=2, size="320x240").read_bytes()


def test_job_over_its_time_bound_fails_once_with_a_reason(worker_app, stores, db, owner_id, tmp_path):
    """A job that exceeds its bound (here: wall time = PROBE_TIMEOUT_SECONDS + 0.1 s per
    second of video) is stopped, marked failed with the reason, and not retried."""
    from watermark_svc.jobs import run_once
    clip = make_clip(tmp_path / "clip.mp4", seconds=6).read_bytes()
    vid = queue_video(db, stores, owner_id, clip)
    saved = {k: worker_app.config[k] for k in ("X264_PRESET", "PROBE_TIMEOUT_SECONDS", "MEDIA_CPU_PER_MEDIA_SECOND")}
    worker_app.config.update(X264_PRESET="veryslow", PROBE_TIMEOUT_SECONDS=3, MEDIA_CPU_PER_MEDIA_SECOND=0.1)
    try:
        started = time.monotonic()
        assert run_once(worker_app, "bounded")
        assert time.monotonic() - started < 30
    finally:
        worker_app.config.update(saved)
    st = query(db, "SELECT v.status, v.status_message, j.status AS job_status, j.attempts FROM videos v "
                   "JOIN jobs j ON j.subject = v.id WHERE v.id = %s", (vid,), one=True)
    assert (st["status"], st["job_status"], st["attempts"]) == ("failed", "dead", 1), st
    assert "limit" in st["status_message"], st
    assert list(stores["watermark"].list(media_prefix(vid))) == []
    assert not any(p.startswith(f"sv-job-{vid[:8]}") for p in os.listdir(worker_app.config["WORK_DIR"]))
