"""Fixtures and helpers to get videos into the real stack for tests: a user, a queued video
(what upload-svc does on completion, minus validation), and the real worker to process it."""
from __future__ import annotations

import time
import uuid

import mysql.connector
import pytest
import requests

from svcommon import jobqueue
from svcommon.filestore import FileStore, original_prefix


@pytest.fixture(scope="module")
def worker_app(live_stack, service_config):
    from watermark_svc import create_app
    return create_app({**service_config, "WORKER_LEASE_SECONDS": 3, "WORKER_RETRY_BASE_SECONDS": 1})


@pytest.fixture(scope="module")
def stores(live_stack, service_config):
    mk = lambda svc: FileStore.from_config(service_config, svc)  # noqa: E731
    return {"upload": mk("upload"), "watermark": mk("watermark"), "streaming": mk("streaming")}


def connect_db(service_config):
    """A plain autocommit connection to the test stack's database, as the service user."""
    return mysql.connector.connect(host="127.0.0.1", port=service_config["DB_PORT"], user="streamvault",
                                   password=service_config["DB_PASSWORD"], database="streamvault", autocommit=True)


@pytest.fixture
def db(service_config):
    conn = connect_db(service_config)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def mdb(service_config):
    """Module-scoped ``db`` for module-scoped fixtures."""
    conn = connect_db(service_config)
    yield conn
    conn.close()


def sql(conn, stmt, params=(), one=False):
    """Rows as dicts (or the first row, or None, with ``one``); None for a statement."""
    cur = conn.cursor(dictionary=True)
    cur.execute(stmt, params)
    rows = cur.fetchall() if cur.with_rows else None
    cur.close()
    return (rows[0] if rows else None) if one else rows


def restart_service(live_stack, name: str, env: dict) -> None:
    """Restart one service of the live stack with another environment (e.g. short timings)."""
    import sys
    from stack.components import wait_http
    from stack.environment import for_service, gunicorn_command
    procs, stack = live_stack["procs"], live_stack["stack"]
    # Killed, not stopped: requests still open (a test's event streams, say) belong to the old
    # environment, and their threads would hold a graceful (or even a quick) shutdown for
    # gunicorn's whole graceful timeout.
    procs.kill(name)
    proc = procs.start(name, gunicorn_command(stack, name, sys.executable), for_service(name, env))
    wait_http(f"{stack.url(name)}/healthz", proc)


def register_user(gateway: str, prefix: str = "u") -> dict:
    """Register + log in through the gateway; returns {id, username, password, access_token, refresh_token}."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    password = "test password " + name
    r = requests.post(f"{gateway}/api/auth/register", json={"username": name, "email": f"{name}@e.test",
                                                            "password": password})
    assert r.status_code == 201, r.text
    pair = requests.post(f"{gateway}/api/auth/login", json={"username": name, "password": password}).json()
    return {**pair["user"], "password": password, "access_token": pair["access_token"],
            "refresh_token": pair["refresh_token"]}


@pytest.fixture(scope="module")
def owner_id(live_stack):
    return register_user(live_stack["url"], "owner")["id"]


def queue_video(db, stores, owner_id: str, original: bytes, max_attempts: int = 3, title: str = "test video",
                visibility: str = "public", password_hash: str | None = None) -> str:
    vid = uuid.uuid4().hex
    key = original_prefix(vid) + "source"
    stores["upload"].put_stream(key, original, length=len(original), content_type="video/mp4")
    cur = db.cursor()
    cur.execute("INSERT INTO videos (id, owner_id, title, description, visibility, password_hash, status, "
                "original_key, size_bytes) VALUES (%s, %s, %s, '', %s, %s, 'queued', %s, %s)",
                (vid, owner_id, title, visibility, password_hash, key, len(original)))
    # Other tests leave queued jobs behind (upload tests stop at 'queued'); the worker takes
    # the highest priority first, so the newest test job is the one run_once processes.
    jobqueue.enqueue(db, jobqueue.VIDEO_PROCESS, {"video_id": vid}, subject=vid, max_attempts=max_attempts,
                     priority=time.time_ns() // 1_000_000 % 2_000_000_000)
    return vid


def pending_jobs(db, vid: str) -> int:
    return sql(db, "SELECT COUNT(*) AS n FROM jobs WHERE subject = %s AND status IN ('queued', 'running')",
               (vid,), one=True)["n"]


def run_video(worker_app, db, vid: str, worker: str = "test-worker", until=None, timeout: float = 300) -> int:
    """Run the real worker's jobs (planning, audio, chunks) until none of the video's is left
    (or ``until()`` holds); the number of jobs run. Its jobs carry the test's high priority
    (queue_video), so they come before anything else claimable."""
    from watermark_svc.jobs import run_once
    ran, deadline = 0, time.monotonic() + timeout
    while pending_jobs(db, vid) and not (until and until()):
        assert time.monotonic() < deadline, f"video {vid} still has jobs after {timeout} s"
        if run_once(worker_app, worker):
            ran += 1
        else:
            time.sleep(0.2)          # a retry's backoff, or another worker's lease
    return ran


def make_ready_video(worker_app, db, stores, owner_id: str, original: bytes, **kw) -> str:
    """Queue a video and run the real worker until every job of it is done."""
    vid = queue_video(db, stores, owner_id, original, **kw)
    run_video(worker_app, db, vid, "test-worker-" + uuid.uuid4().hex[:6])
    cur = db.cursor()
    cur.execute("SELECT status, status_message FROM videos WHERE id = %s", (vid,))
    status, message = cur.fetchone()
    assert status == "ready", message
    return vid
