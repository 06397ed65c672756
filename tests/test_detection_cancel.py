"""Detections are cancellable (DELETE /api/forensics/detect/{id}) and bounded: a queued one
is never run, a running one has its ffmpeg children killed within seconds even when it
reports no progress, the suspect object is removed, and playlists are refused at submit."""
from __future__ import annotations

import io
import subprocess
import time

import pytest
import requests

from svcommon import ffmpeg as ff
from svcommon.db import query
from svcommon.jobqueue import DETECTION_RUN
from tests.support import hostile_media as hm
from tests.support.media import make_clip

# These tests know which row a worker claims: other tests' rows are held back meanwhile.
pytestmark = [pytest.mark.heavy, pytest.mark.usefixtures("own_detections")]


@pytest.fixture(scope="module")
def admin(live_stack):
    r = requests.post(f"{live_stack['url']}/api/auth/login",
                      json={"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def suspect(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("suspect") / "s.mp4", seconds=2, size="320x240").read_bytes()


def _submit(client, admin, data: bytes, name: str = "leak.mp4"):
    return client.post("/api/forensics/detect", headers=admin,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_cancel_queued_detection_never_runs(worker_app, stores, db, admin, suspect):
    from watermark_svc.jobs import run_once
    client = worker_app.test_client()
    r = _submit(client, admin, suspect)
    assert r.status_code == 202, r.get_data(as_text=True)
    det = r.json["job_id"]
    key = query(db, "SELECT suspect_key FROM detections WHERE id = %s", (det,), one=True)["suspect_key"]
    assert client.delete(f"/api/forensics/detect/{det}", headers=admin).status_code == 204
    st = client.get(f"/api/forensics/detect/{det}", headers=admin).json
    assert st["status"] == "cancelled" and "cancelled" in st["error"]
    assert stores["watermark"].head(key) is None
    assert not run_once(worker_app, "cancel-test", kinds=[DETECTION_RUN])
    r = client.delete(f"/api/forensics/detect/{det}", headers=admin)
    assert r.status_code == 409 and r.json["code"] == "detection_finished"


def test_cancel_running_detection_kills_its_children(worker_app, stores, db, admin, suspect):
    from svcommon.jobqueue import claim
    from svcommon.jobworker import Lease
    from watermark_svc.extensions import db as wdb
    from watermark_svc.forensics.runner import DETECTION
    client = worker_app.test_client()
    det = _submit(client, admin, suspect).json["job_id"]
    with worker_app.app_context():
        job = claim(wdb, "cancel-test", 3, [DETECTION_RUN]).job
        assert job.subject == det
        tracker = ff.Tracker()
        with Lease(wdb, job, "cancel-test", 3, DETECTION.guard, DETECTION.progress_interval) as lease, \
                ff.tracking(tracker):
            lease.on_lost(tracker)
            # A busy analysis child that reports no progress (what a hostile suspect causes).
            child = ff.spawn(ff.base() + ["-re", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5", "-f", "null", "-"],
                             ff.Bounds(wall_seconds=120), stdin=subprocess.DEVNULL)
            assert client.delete(f"/api/forensics/detect/{det}", headers=admin).status_code == 204
            cancelled = time.monotonic()
            child.wait(15)
            assert time.monotonic() - cancelled < 10 and lease.lost.is_set()
    assert query(db, "SELECT status FROM detections WHERE id = %s", (det,), one=True)["status"] == "cancelled"


@pytest.mark.parametrize("builder", ["hls", "mpd", "concat"])
def test_playlist_suspects_refused_at_submit(worker_app, admin, builder, tmp_path):
    path = {"hls": lambda: hm.hls_playlist(tmp_path / "s.mp4", "http://127.0.0.1:9/x.ts"),
            "mpd": lambda: hm.dash_mpd(tmp_path / "s.mp4", "http://127.0.0.1:9/"),
            "concat": lambda: hm.concat_list(tmp_path / "s.mp4", "/etc/hostname")}[builder]()
    r = _submit(worker_app.test_client(), admin, path.read_bytes())
    assert r.status_code == 422 and r.json["code"] == "not_a_video"


def test_suspect_longer_than_the_forensics_limit_fails_with_reason(worker_app, stores, db, admin, suspect):
    from watermark_svc.jobs import run_once
    det = _submit(worker_app.test_client(), admin, suspect).json["job_id"]
    saved = worker_app.config["FORENSICS_MAX_SUSPECT_SECONDS"]
    worker_app.config["FORENSICS_MAX_SUSPECT_SECONDS"] = 1
    try:
        assert run_once(worker_app, "limit-test", kinds=[DETECTION_RUN])
    finally:
        worker_app.config["FORENSICS_MAX_SUSPECT_SECONDS"] = saved
    row = query(db, "SELECT d.status, j.attempts, j.status AS job_status, d.error FROM detections d "
                    "JOIN jobs j ON j.subject = d.id WHERE d.id = %s", (det,), one=True)
    assert (row["status"], row["attempts"], row["job_status"]) == ("failed", 1, "dead") \
        and "at most 1 s" in row["error"], row
