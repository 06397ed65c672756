"""The media worker against the real stack: file-svc over SeaweedFS, MariaDB, ffmpeg.
A queued video becomes ready with its A/B ladder stored only as ciphertext (delivery v2);
a killed worker's job is taken over after its lease lapses, leaving nothing named under
the dead attempt's secret; a corrupt original ends failed with no leftovers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from svcommon.db import query
from svcommon.filestore import media_prefix
from tests.support.media import make_clip
from tests.support.sealed_media import assert_sealed_only, rebuild_tree, sealed_objects
from tests.support.videos import queue_video, sql

# These tests know which row a worker claims: other tests' rows are held back meanwhile.
pytestmark = [pytest.mark.heavy, pytest.mark.usefixtures("own_jobs")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state(db, vid):
    return query(db, "SELECT v.status, v.status_message, j.status AS job_status, j.attempts, j.lease_owner, "
                     "j.last_error, j.step "
                     "FROM videos v JOIN jobs j ON j.subject = v.id WHERE v.id = %s", (vid,), one=True)


def media_keys(stores, vid):
    return {o["key"] for o in stores["watermark"].list(media_prefix(vid))}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=6).read_bytes()


def test_queued_video_becomes_ready_with_ab_ladder(worker_app, stores, db, owner_id, clip):
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    assert run_once(worker_app, "test-worker")
    st = state(db, vid)
    assert (st["status"], st["job_status"]) == ("ready", "done"), st
    media = query(db, "SELECT segment_count, metadata, delivery_version FROM video_media WHERE video_id = %s",
                  (vid,), one=True)
    assert (media["segment_count"], media["delivery_version"]) == (3, 2)
    keys = media_keys(stores, vid)
    import json
    meta = json.loads(media["metadata"])
    assert [r["name"] for r in meta["renditions"]] == ["480p", "360p"]
    for r in meta["renditions"]:
        assert media_prefix(vid) + f"video/{r['name']}/init.mp4" in keys
    assert media_prefix(vid) + "thumb.jpg" in keys and media_prefix(vid) + "poster.jpg" in keys
    assert media_prefix(vid) + "audio/init.mp4" in keys
    # Segments only as ciphertext: 2 rungs x A/B x 3 + 4 audio (AAC frames run a little past 6 s).
    sealed = assert_sealed_only(stores["watermark"], db, worker_app.config["MEDIA_MASTER_KEY"], vid)
    assert sealed == 2 * 2 * 3 + len(meta["audio"]["segment_sizes"]) == 16
    assert not any("/a/" in k or "/b/" in k or (k.endswith(".m4s") and "/enc/" not in k) for k in keys)
    # The forensic reference is ready before any leak is traced, and it reads back.
    import io
    import numpy as np
    from watermark_svc.forensics.dbcatalogue import fingerprint_key, proxy_key
    assert proxy_key(vid) in keys and fingerprint_key(vid) in keys
    fp = np.load(io.BytesIO(stores["watermark"].get_bytes(fingerprint_key(vid))), allow_pickle=False)
    assert fp.shape == (6 * 30, 144)            # 6 s at 30 fps, one 16x9 grid per frame


@pytest.mark.parametrize("damage", ["random_bytes", "truncated"])
def test_corrupt_original_fails_without_leftovers(worker_app, stores, db, owner_id, clip, damage):
    from watermark_svc.jobs import run_once
    body = os.urandom(200_000) if damage == "random_bytes" else clip[: len(clip) // 3]
    vid = queue_video(db, stores, owner_id, body)
    assert run_once(worker_app, "test-worker")
    st = state(db, vid)
    assert (st["status"], st["job_status"]) == ("failed", "dead"), st
    assert st["status_message"] and "processing error" not in st["status_message"]   # a reason, not a crash
    assert media_keys(stores, vid) == set()
    assert not any(p.startswith(f"sv-job-{vid[:8]}") for p in os.listdir(worker_app.config["WORK_DIR"]))


def test_killed_worker_job_is_resumed_by_another(worker_app, stores, db, owner_id, clip, live_stack):
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    env = {**os.environ, **live_stack["env"], "WORKER_LEASE_SECONDS": "3", "PYTHONPATH": "watermark-svc",
           "X264_PRESET": "veryslow"}   # slow enough that we surely kill it mid-job
    proc = subprocess.Popen([sys.executable, "-m", "watermark_svc.worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while (st := state(db, vid))["job_status"] != "running" or st["step"] != "encode":   # mid-job
            assert time.monotonic() < deadline, st
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert state(db, vid)["job_status"] == "running"           # the dead worker still "holds" it
    assert not run_once(worker_app, "rescuer")   # lease not lapsed yet: nothing to claim
    # Had it died while storing, segments named under its secret (lost with it) would be
    # there; the rescuer must not leave them behind.
    stray = media_prefix(vid) + f"enc/480p/00000-{os.urandom(16).hex()}.m4s"
    stores["watermark"].put_stream(stray, os.urandom(1000), length=1000)
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE subject = %s", (vid,))
    assert run_once(worker_app, "rescuer")
    st = state(db, vid)
    assert (st["status"], st["job_status"], st["attempts"]) == ("ready", "done", 2), st
    assert stray not in media_keys(stores, vid)
    assert assert_sealed_only(stores["watermark"], db, worker_app.config["MEDIA_MASTER_KEY"], vid) == 16


def test_long_job_keeps_its_lease(worker_app, stores, db, owner_id, clip):
    """A job that runs far longer than its lease is renewed, not stolen by another worker."""
    import threading
    from svcommon.jobqueue import VIDEO_PROCESS, claim
    from watermark_svc.extensions import db as wdb
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    slow = worker_app.config.copy()
    worker_app.config["X264_PRESET"] = "veryslow"          # several times the 3-s lease
    try:
        t = threading.Thread(target=run_once, args=(worker_app, "long-runner"))
        t.start()
        stolen = []
        deadline = time.monotonic() + 300
        while t.is_alive() and time.monotonic() < deadline:
            time.sleep(1)
            with worker_app.app_context():
                job = claim(wdb, "thief", 3, kinds=(VIDEO_PROCESS,))   # what a worker claims (other
                # tests' queue-only kinds may be waiting in the shared database)
            if job is not None:
                stolen.append(job)
        t.join()
    finally:
        worker_app.config["X264_PRESET"] = slow["X264_PRESET"]
    st = state(db, vid)
    assert stolen == [] and (st["status"], st["job_status"], st["attempts"]) == ("ready", "done", 1), (stolen, st)


def test_video_deleted_while_its_reference_is_built_leaves_nothing(worker_app, stores, db, owner_id, clip,
                                                                    service_config, tmp_path):
    """The race upload-svc's delete runs against the worker's after-processing step: the
    delete commits the 'deleting' mark, removes the objects (no lock held), then the row;
    the forensic reference lands after the objects went. The worker must see the mark and
    remove what it wrote — else proxy and fingerprint outlive the video."""
    import json
    from upload_svc import repository as upload_repo
    from tests.support.videos import connect_db
    from watermark_svc.extensions import db as wdb
    from watermark_svc.handlers import _prepare_forensics
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    assert run_once(worker_app, "test-worker")
    meta = json.loads(query(db, "SELECT metadata FROM video_media WHERE video_id = %s", (vid,), one=True)["metadata"])
    original = tmp_path / "original"
    original.write_bytes(clip)
    deleter = connect_db(service_config)
    deleter.autocommit = False
    try:
        upload_repo.mark_deleting(deleter, vid)              # upload-svc's remove_video, in its order
        deleter.commit()
        stores["upload"].delete_prefix(media_prefix(vid))
        assert media_keys(stores, vid) == set()
        with worker_app.app_context():                       # the reference lands after the delete
            _prepare_forensics(worker_app, wdb, stores["watermark"], vid, original, meta, tmp_path)
        assert media_keys(stores, vid) == set()
        upload_repo.delete_video(deleter, vid)
        deleter.commit()
    finally:
        deleter.close()
    assert media_keys(stores, vid) == set()


def test_worker_leaves_a_video_being_deleted_alone(worker_app, stores, db, owner_id, clip):
    """A job whose video is marked 'deleting' is not processed: no media, no status change,
    no forensic reference (the delete's object removal may already have run)."""
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    db.cursor().execute("UPDATE videos SET status = 'deleting' WHERE id = %s", (vid,))
    run_once(worker_app, "test-worker")
    assert query(db, "SELECT status FROM videos WHERE id = %s", (vid,), one=True)["status"] == "deleting"
    assert query(db, "SELECT COUNT(*) AS n FROM video_media WHERE video_id = %s", (vid,), one=True)["n"] == 0
    assert media_keys(stores, vid) == set()
    db.cursor().execute("DELETE FROM videos WHERE id = %s", (vid,))     # the delete's last step


def test_attempt_that_loses_its_job_while_storing_removes_what_it_stored(worker_app, stores, db, owner_id, clip,
                                                                         tmp_path):
    """A worker whose lease lapsed (a stall) may still be storing when another worker has
    taken the job over: its segments carry its own secret's names, which nothing will ever
    publish. It removes them itself as soon as it learns it lost the job, and publishes nothing."""
    from watermark_svc.extensions import db as wdb
    from watermark_svc.handlers import _store
    from svcommon.jobqueue import LeaseLost, claim
    from svcommon.jobworker import Lease
    from watermark_svc.jobs import run_once
    source = queue_video(db, stores, owner_id, clip)
    assert run_once(worker_app, "test-worker")
    meta = rebuild_tree(stores["watermark"], db, worker_app.config["MEDIA_MASTER_KEY"], source, tmp_path / "out")
    vid = queue_video(db, stores, owner_id, clip)

    class StalledLease(Lease):
        """Learns it lost the job after a few objects, as the renewal thread would."""
        def report(self, pct, step):
            self.reports = getattr(self, "reports", 0) + 1
            if self.reports == 5:
                sql(db, "UPDATE jobs SET lease_owner = 'rescuer' WHERE id = %s", (self.job.id,))
                self.lost.set()
            super().report(pct, step)

    with worker_app.app_context():
        job = claim(wdb, "stalled", 60).job
        assert job.subject == vid
        with StalledLease(wdb, job, "stalled", 60) as lease, pytest.raises(LeaseLost):
            _store(worker_app.config, wdb, stores["watermark"], job, lease, meta, tmp_path / "out")
    assert sealed_objects(stores["watermark"], vid) == []
    assert query(db, "SELECT COUNT(*) AS n FROM video_media WHERE video_id = %s", (vid,), one=True)["n"] == 0
