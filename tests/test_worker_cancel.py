"""Cancellation: deleting a video while a worker encodes one of its chunks stops the job
at its next lease renewal (it sees the job row gone and kills the ffmpeg process group),
not by finishing; drops the video's other chunk jobs, frees the worker, and leaves nothing
in S3, the database, the scratch folder or the worker's copy of the original. The
assertions are on that property (lease lost, children killed, nothing recorded), with
wall bounds only as generous guards against a hang."""
from __future__ import annotations

import dataclasses
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
    from svcommon.jobworker import run_once as run_with
    from upload_svc import repository as upload_repo
    from watermark_svc.chunk_jobs import CHUNK
    from watermark_svc.extensions import db as wdb
    from watermark_svc.jobs import handlers, run_once
    clip = make_clip(tmp_path / "clip.mp4", seconds=6).read_bytes()
    from watermark_svc.originals import cache_of
    vid = queue_video(db, stores, owner_id, clip)
    preset = worker_app.config["X264_PRESET"]
    worker_app.config["X264_PRESET"] = "veryslow"          # still encoding when we delete (the plan keeps it)
    marker = f"sv-chunk-{vid[:8]}"
    try:
        assert run_once(worker_app, "cancel-test")         # planning: chunk jobs queued
        assert query(db, "SELECT COUNT(*) AS n FROM jobs WHERE subject = %s AND status = 'queued'",
                     (vid,), one=True)["n"] == 5            # audio + one chunk per rung + the reference + the storyboard
        db.cursor().execute("UPDATE jobs SET run_after = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE subject = %s "
                            "AND kind = 'video.audio'", (vid,))   # the thread takes a chunk
        seen: list = []                                     # (lease, lost?) of the chunk job

        def noting(app, job, lease):
            seen.append(lease)
            CHUNK.run(app, job, lease)
        chunk = dataclasses.replace(CHUNK, run=noting, on_lost=lambda app, job: (seen.append("on_lost"),
                                                                                 CHUNK.on_lost(app, job)))
        worker = threading.Thread(target=run_with, args=(worker_app, wdb, {**handlers(), "video.chunk": chunk},
                                                         "cancel-test"))
        worker.start()
        deadline = time.monotonic() + 120
        while "chunk" not in (query(db, "SELECT step FROM jobs WHERE subject = %s AND status = 'running'",
                                    (vid,), one=True) or {}).get("step", "") or not _our_children(marker):
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
        worker.join(120)                                    # a guard against a hang, not a measurement
        assert not worker.is_alive()
        # Stopped by the lease (its renewal saw the video go), not by finishing the encode.
        assert seen[0].lost.is_set() and seen[-1] == "on_lost", seen
    finally:
        worker_app.config["X264_PRESET"] = preset
    assert _our_children(marker) == []
    assert not any(p.startswith(marker) for p in os.listdir(worker_app.config["WORK_DIR"]))
    assert list(stores["watermark"].list(media_prefix(vid))) == []
    assert query(db, "SELECT COUNT(*) AS n FROM jobs WHERE subject = %s", (vid,), one=True)["n"] == 0
    assert query(db, "SELECT COUNT(*) AS n FROM video_chunks WHERE video_id = %s", (vid,), one=True)["n"] == 0
    assert not (cache_of(worker_app).root / vid).exists()


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
            # Killed by the lease thread (the "cancelled" reason), not by the 60-s bound.
            with pytest.raises(ProcessingError, match="cancelled"):
                group.wait_ok(endless, "encode", timeout=60)
            assert lease.lost.is_set()
        group.kill_all()


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("c") / "c.mp4", seconds=2, size="320x240").read_bytes()


def test_job_over_its_time_bound_fails_once_with_a_reason(worker_app, stores, db, owner_id, tmp_path):
    """A chunk job that exceeds its bound (here: wall time = PROBE_TIMEOUT_SECONDS + 0.1 s
    per second of video) is stopped and not retried; the video, not yet playable, is marked
    failed with the reason, its waiting jobs dropped, its outputs removed."""
    from tests.support.videos import run_video
    from watermark_svc.jobs import run_once
    clip = make_clip(tmp_path / "clip.mp4", seconds=6).read_bytes()
    vid = queue_video(db, stores, owner_id, clip)
    assert run_once(worker_app, "planner")
    saved = {k: worker_app.config[k] for k in ("X264_PRESET", "PROBE_TIMEOUT_SECONDS", "MEDIA_CPU_PER_MEDIA_SECOND")}
    sql_db = db.cursor()
    # x264's slowest preset: over the 3-s budget below on any machine (veryslow is not, on a fast
    # host with one thread per encoder: 60 frames of 360p in 1.8 s)
    sql_db.execute("UPDATE video_encodes SET plan = JSON_SET(plan, '$.settings.preset', 'placebo') "
                   "WHERE video_id = %s", (vid,))
    # The audio job (claimed first, and under these bounds too on a busy machine) waits: the
    # bounded job is a chunk; the failure then drops the waiting audio.
    sql_db.execute("UPDATE jobs SET run_after = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE subject = %s "
                   "AND kind = 'video.audio'", (vid,))
    worker_app.config.update(PROBE_TIMEOUT_SECONDS=3, MEDIA_CPU_PER_MEDIA_SECOND=0.1)
    try:
        run_video(worker_app, db, vid, "bounded")
    finally:
        worker_app.config.update(saved)
    st = query(db, "SELECT status, status_message FROM videos WHERE id = %s", (vid,), one=True)
    dead = query(db, "SELECT kind, attempts FROM jobs WHERE subject = %s AND status = 'dead'", (vid,))
    assert st["status"] == "failed" and "limit" in st["status_message"], st
    assert [(d["kind"], d["attempts"]) for d in dead] == [("video.chunk", 1)], dead
    assert list(stores["watermark"].list(media_prefix(vid))) == []
    assert not any(p.startswith(f"sv-chunk-{vid[:8]}") for p in os.listdir(worker_app.config["WORK_DIR"]))
