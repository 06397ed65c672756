"""Graceful shutdown of a service (docs/operations.md "Stopping and restarting"): SIGTERM to
its gunicorn begins to stop at once (idle workers exit), and a request in flight (a slow reader's
download of an original) still gets every byte, within GRACEFUL_TIMEOUT_SECONDS."""
from __future__ import annotations

import hashlib
import random
import re
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import requests

from stack.environment import GRACEFUL_TIMEOUT_SECONDS, for_service, gunicorn_command
from svcommon.filestore import original_prefix
from tests.support.videos import register_user, sql

ROOT = Path(__file__).resolve().parents[1]

SIZE = 24 * 1024 * 1024          # well beyond what socket buffers hold: the view is still sending


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_in_flight_download_survives_sigterm(live_stack, mdb, stores):
    owner = register_user(live_stack["url"], "graceful")
    body = random.Random(18).randbytes(SIZE)
    vid = uuid.uuid4().hex
    key = original_prefix(vid) + "original"
    stores["upload"].put_stream(key, body, length=SIZE)
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, status, original_key, size_bytes) "
             "VALUES (%s, %s, 'graceful', '', 'failed', %s, %s)", (vid, owner["id"], key, SIZE))
    port = _free_port()
    argv = gunicorn_command(live_stack["stack"], "upload", sys.executable)
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    procs = live_stack["procs"]
    proc = procs.start("graceful-upload", argv, for_service("upload", live_stack["env"]))
    try:
        from stack.components import wait_http
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        resp = requests.get(f"http://127.0.0.1:{port}/api/videos/{vid}/original", stream=True, timeout=30,
                            headers={"Authorization": f"Bearer {owner['access_token']}", "Connection": "close"})
        assert resp.status_code == 200, resp.text
        chunks = resp.iter_content(256 * 1024)
        digest, got = hashlib.sha256(), 0
        first = next(chunks)
        digest.update(first)
        got += len(first)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        log = live_stack["stack"].var / "logs" / "graceful-upload.log"
        deadline = time.monotonic() + 5
        while "Worker exiting" not in log.read_text(errors="replace"):    # the idle worker has gone
            assert time.monotonic() < deadline, "gunicorn did not begin its shutdown"
            time.sleep(0.05)
        for piece in chunks:                 # the request in flight goes on to its end
            digest.update(piece)
            got += len(piece)
        assert got == SIZE and digest.digest() == hashlib.sha256(body).digest()
        assert proc.wait(GRACEFUL_TIMEOUT_SECONDS + 5) == 0
        assert time.monotonic() - t0 < GRACEFUL_TIMEOUT_SECONDS + 5
    finally:
        procs.stop("graceful-upload", grace=2)
        sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))
        stores["upload"].delete_prefix(original_prefix(vid))


def test_the_bound_is_the_same_everywhere():
    """Native and compose stop alike, and Docker waits longer than gunicorn's bound."""
    docker = (ROOT / "docker" / "python.Dockerfile").read_text()
    assert f"--graceful-timeout {GRACEFUL_TIMEOUT_SECONDS}\"" in docker
    grace = re.search(r"stop_grace_period: (\d+)s", (ROOT / "docker-compose.yml").read_text())
    assert grace and int(grace.group(1)) > GRACEFUL_TIMEOUT_SECONDS
