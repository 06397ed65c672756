"""The media worker against the real stack: file-svc over SeaweedFS, MariaDB, ffmpeg.
A queued video becomes ready with its A/B ladder stored; a killed worker's job is taken
over after its lease lapses; a corrupt original ends failed with no leftovers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import mysql.connector
import pytest
import requests

from svcommon.db import query
from svcommon.filestore import FileStore, media_prefix, original_prefix
from tests.support.media import make_clip

pytestmark = pytest.mark.heavy
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def worker_app(live_stack, service_config):
    from watermark_svc import create_app
    return create_app({**service_config, "WORKER_LEASE_SECONDS": 3, "WORKER_RETRY_BASE_SECONDS": 1})


@pytest.fixture(scope="module")
def stores(live_stack, service_config):
    mk = lambda svc: FileStore.from_config(service_config, svc)  # noqa: E731
    return {"upload": mk("upload"), "watermark": mk("watermark")}


@pytest.fixture
def db(service_config):
    conn = mysql.connector.connect(host="127.0.0.1", port=service_config["DB_PORT"], user="streamvault",
                                   password=service_config["DB_PASSWORD"], database="streamvault", autocommit=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def owner_id(live_stack):
    gw = live_stack["url"]
    name = "wk_" + uuid.uuid4().hex[:8]
    requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@e.test", "password": "p" * 12})
    tok = requests.post(f"{gw}/api/auth/login", json={"username": name, "password": "p" * 12}).json()["access_token"]
    return requests.get(f"{gw}/api/auth/profile", headers={"Authorization": f"Bearer {tok}"}).json()["id"]


def queue_video(db, stores, owner_id, original: bytes, max_attempts: int = 3) -> str:
    """What upload-svc does on completion, minus its validation (so corrupt input reaches us)."""
    vid = uuid.uuid4().hex
    key = original_prefix(vid) + "source"
    stores["upload"].put_stream(key, original, length=len(original), content_type="video/mp4")
    cur = db.cursor()
    cur.execute("INSERT INTO videos (id, owner_id, title, description, status, original_key, size_bytes) "
                "VALUES (%s, %s, 'worker test', '', 'queued', %s, %s)", (vid, owner_id, key, len(original)))
    cur.execute("INSERT INTO jobs (id, video_id, kind, max_attempts) VALUES (%s, %s, 'process', %s)",
                (uuid.uuid4().hex, vid, max_attempts))
    return vid


def state(db, vid):
    return query(db, "SELECT v.status, v.status_message, j.status AS job_status, j.attempts, j.lease_owner, j.error "
                     "FROM videos v JOIN jobs j ON j.video_id = v.id WHERE v.id = %s", (vid,), one=True)


def media_keys(stores, vid):
    return {o["key"] for o in stores["watermark"].list(media_prefix(vid))}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=6).read_bytes()


def test_queued_video_becomes_ready_with_ab_ladder(worker_app, stores, db, owner_id, clip):
    from watermark_svc.worker import run_once
    vid = queue_video(db, stores, owner_id, clip)
    assert run_once(worker_app, stores["watermark"], "test-worker")
    st = state(db, vid)
    assert (st["status"], st["job_status"]) == ("ready", "done"), st
    media = query(db, "SELECT segment_count, metadata FROM video_media WHERE video_id = %s", (vid,), one=True)
    assert media["segment_count"] == 3
    keys = media_keys(stores, vid)
    import json
    meta = json.loads(media["metadata"])
    assert [r["name"] for r in meta["renditions"]] == ["480p", "360p"]
    for r in meta["renditions"]:
        assert media_prefix(vid) + f"video/{r['name']}/init.mp4" in keys
        for i in range(3):
            for variant in "ab":
                assert media_prefix(vid) + f"video/{r['name']}/{variant}/{i:05d}.m4s" in keys
    assert media_prefix(vid) + "thumb.jpg" in keys and media_prefix(vid) + "audio/init.mp4" in keys


@pytest.mark.parametrize("damage", ["random_bytes", "truncated"])
def test_corrupt_original_fails_without_leftovers(worker_app, stores, db, owner_id, clip, damage):
    from watermark_svc.worker import run_once
    body = os.urandom(200_000) if damage == "random_bytes" else clip[: len(clip) // 3]
    vid = queue_video(db, stores, owner_id, body)
    assert run_once(worker_app, stores["watermark"], "test-worker")
    st = state(db, vid)
    assert (st["status"], st["job_status"]) == ("failed", "failed"), st
    assert st["status_message"] and "processing error" not in st["status_message"]   # a reason, not a crash
    assert media_keys(stores, vid) == set()
    assert not any(p.startswith(f"sv-job-{vid[:8]}") for p in os.listdir(worker_app.config["WORK_DIR"]))


def test_killed_worker_job_is_resumed_by_another(worker_app, stores, db, owner_id, clip, live_stack):
    from watermark_svc.worker import run_once
    vid = queue_video(db, stores, owner_id, clip)
    env = {**os.environ, **live_stack["env"], "WORKER_LEASE_SECONDS": "3", "PYTHONPATH": "watermark-svc",
           "X264_PRESET": "veryslow"}   # slow enough that we surely kill it mid-job
    proc = subprocess.Popen([sys.executable, "-m", "watermark_svc.worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while (st := state(db, vid))["job_status"] != "running":
            assert time.monotonic() < deadline, st
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert state(db, vid)["job_status"] == "running"           # the dead worker still "holds" it
    assert not run_once(worker_app, stores["watermark"], "rescuer")   # lease not lapsed yet: nothing to claim
    time.sleep(4)
    assert run_once(worker_app, stores["watermark"], "rescuer")
    st = state(db, vid)
    assert (st["status"], st["job_status"], st["attempts"]) == ("ready", "done", 2), st
