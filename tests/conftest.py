"""Fixtures shared by the end-to-end test modules in tests/ (the stack-wide ones, worker_app,
stores, db, mdb and owner_id, come from tests/support/videos.py, registered as a plugin by
the root conftest.py so tests/ and bench/ both get them without importing fixtures)."""
from __future__ import annotations

import uuid

import pytest
import requests

from svcommon.passwords import hash_password
from tests.support.media import make_clip
from tests.support.playback import PLAYBACK_ENV, VIDEO_PASSWORD
from tests.support.queue import own_queue
from tests.support.sealed_media import keys_of
from tests.support.videos import make_ready_video, register_user, restart_service, sql


@pytest.fixture
def admin_account(live_stack):
    """The bootstrap admin's credentials, for the login form."""
    return {"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]}


@pytest.fixture
def admin_headers(live_stack, admin_account):
    """The bootstrap admin's bearer headers (a fresh login per test: access tokens live 5 minutes)."""
    r = requests.post(f"{live_stack['url']}/api/auth/login", json=admin_account, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def play(live_stack):
    """The live stack with streaming-svc restarted on short playback timings (restored after)."""
    restart_service(live_stack, "streaming", {**live_stack["env"], **PLAYBACK_ENV})
    yield live_stack
    restart_service(live_stack, "streaming", live_stack["env"])


@pytest.fixture(scope="module")
def gw(play):
    """The gateway URL of the playback stack (modules on the plain live stack define their own)."""
    return play["url"]


@pytest.fixture(scope="module")
def codeword_secret(play):
    """WATERMARK_SECRET: what a session's A/B variants are derived from (svcommon.codeword)."""
    return play["env"]["WATERMARK_SECRET"]


@pytest.fixture(scope="module")
def owner(play):
    return register_user(play["url"], "owner")


@pytest.fixture(scope="module")
def clip(request, tmp_path_factory):
    """A clip of the module's ``CLIP_SECONDS`` (10 s if it sets none) and ``CLIP_SIZE``
    (854x480, a 480p + 360p ladder, if it sets none; tests.support.media.ONE_RUNG for one rung)."""
    seconds = getattr(request.module, "CLIP_SECONDS", 10)
    size = getattr(request.module, "CLIP_SIZE", "854x480")
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=seconds, size=size).read_bytes()


@pytest.fixture(scope="module")
def videos(play, worker_app, mdb, stores, owner, clip):
    """Two processed videos (public, password) and a ready-looking private one."""
    out = {
        "public": make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Public sunrise clip"),
        "password": make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Secret sunset clip",
                                     visibility="password", password_hash=hash_password(VIDEO_PASSWORD)),
    }
    private = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Owner only diary', '', 'private', 'ready')", (private, owner["id"]))
    out["private"] = private
    return out


@pytest.fixture(scope="module")
def delivery_video(play, worker_app, mdb, stores, owner, clip, service_config):
    """One processed public video (delivery v2: sealed segments): (video id, its VideoKeys)."""
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Delivery clip")
    return vid, keys_of(mdb, service_config["MEDIA_MASTER_KEY"], vid)


@pytest.fixture
def own_jobs(db):
    """Only this test's jobs are claimable while it runs (see own_queue)."""
    with own_queue(db):
        yield


@pytest.fixture
def own_detections(db):
    """Only this test's detections are claimable while it runs (see own_queue)."""
    with own_queue(db):
        yield
