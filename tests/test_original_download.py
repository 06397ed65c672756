"""GET /api/videos/{id}/original through the gateway: a download holds an upload-svc
thread while the client reads, so slow readers must not take every thread (they are
capped per process, 429 downloads_busy beyond; docs/api.md)."""
from __future__ import annotations

import random
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from svcommon.filestore import original_prefix
from tests.support.videos import register_user

READERS = 20            # more than an upload-svc's threads (2 workers x 8)
SIZE = 32 * 1024 * 1024  # far more than the socket buffers between upload-svc and the reader


@pytest.fixture
def big_original(live_stack, stores, db):
    user = register_user(live_stack["url"], "dl")
    vid = uuid.uuid4().hex
    key = original_prefix(vid) + "original"
    blob = random.Random(12).randbytes(SIZE)
    stores["upload"].put_stream(key, blob, length=len(blob), content_type="application/octet-stream")
    db.cursor().execute("INSERT INTO videos (id, owner_id, title, description, visibility, status, original_key, "
                        "original_filename, size_bytes) VALUES (%s, %s, 'big', '', 'private', 'failed', %s, "
                        "'big.mp4', %s)", (vid, user["id"], key, len(blob)))
    yield user, vid
    db.cursor().execute("DELETE FROM videos WHERE id = %s", (vid,))
    stores["upload"].delete(key)


def _slow_reader(gateway: str, path: str, token: str) -> socket.socket:
    """Asks for the download, then reads nothing (a tiny receive buffer, like a stalled phone)."""
    url = urlsplit(gateway)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((url.hostname, url.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
              f"Connection: close\r\n\r\n".encode())
    s.setblocking(False)
    return s


def _status(s: socket.socket, seen: dict) -> int | None:
    """The response's status code once its status line has arrived (never blocks)."""
    head = seen.get(s, b"")
    if len(head) < 12:
        try:
            head += s.recv(12 - len(head))
        except BlockingIOError:
            pass
        seen[s] = head
    return int(head[9:12]) if len(head) >= 12 else None


def test_slow_readers_of_originals_leave_threads_for_the_api(live_stack, big_original):
    gw = live_stack["url"]
    user, vid = big_original
    auth = {"Authorization": f"Bearer {user['access_token']}"}
    readers = [_slow_reader(gw, f"/api/videos/{vid}/original", user["access_token"]) for _ in range(READERS)]
    try:
        seen: dict = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(_status(s, seen) is not None for s in readers) < READERS:
            time.sleep(0.1)
        # The API still answers at once while the readers sit on their downloads.
        t0 = time.monotonic()
        r = requests.get(f"{gw}/api/videos/mine", headers=auth, timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 < 3
        statuses = [_status(s, seen) for s in readers]
        assert 1 <= statuses.count(200) <= 2 * 2       # DOWNLOAD_MAX_PER_WORKER (2) x 2 workers
        assert statuses.count(429) == READERS - statuses.count(200)
    finally:
        for s in readers:
            s.close()
    # Gone readers give their slots back: a download works again (no fixed wait).
    deadline = time.monotonic() + 30
    while True:
        r = requests.get(f"{gw}/api/videos/{vid}/original", headers={**auth, "Range": "bytes=0-9"}, timeout=10)
        if r.status_code == 206 or time.monotonic() > deadline:
            break
        assert r.status_code == 429 and r.json()["code"] == "downloads_busy"
        time.sleep(0.2)
    assert r.status_code == 206 and len(r.content) == 10
