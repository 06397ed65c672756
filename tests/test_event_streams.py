"""Issue #11 item 8 through the gateway: progress streams (SSE) must not starve upload-svc.
Each open stream holds one of upload-svc's threads (2 gthread workers x 8); streams are
capped per worker process and per user, so uploads and the API keep answering promptly."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.videos import register_user, restart_service

PER_USER = 2
STREAM_ENV = {"SSE_MAX_STREAMS_PER_USER": str(PER_USER), "SSE_MAX_STREAMS_PER_WORKER": "4"}
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def gw(live_stack):
    restart_service(live_stack, "upload", {**live_stack["env"], **STREAM_ENV})
    yield live_stack["url"]
    restart_service(live_stack, "upload", live_stack["env"])


def bearer(user: dict) -> dict:
    return {"Authorization": f"Bearer {user['access_token']}"}


def uploading_video(gw: str, user: dict) -> tuple[str, str]:
    """A tus upload that stays unfinished: its video's status stream stays open."""
    r = requests.post(f"{gw}/api/uploads", headers={**TUS, **bearer(user), "Upload-Length": "1000"}, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["X-Video-Id"], r.headers["Location"]


def open_stream(gw: str, user: dict, video_id: str):
    """The open response, or the string 'timeout' when no thread answered within 10 s."""
    try:
        return requests.get(f"{gw}/api/videos/{video_id}/events", headers=bearer(user), stream=True, timeout=(10, 10))
    except requests.Timeout:
        return "timeout"


def close_all(responses) -> None:
    for r in responses:
        if not isinstance(r, str):
            r.close()


def test_per_user_cap_on_open_streams(gw):
    user = register_user(gw, "sse")
    vid, _ = uploading_video(gw, user)
    held = [open_stream(gw, user, vid) for _ in range(PER_USER)]
    try:
        assert [r.status_code for r in held] == [200] * PER_USER
        refused = open_stream(gw, user, vid)
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_streams"
        assert int(refused.headers["Retry-After"]) > 0
        # Another user is not affected by this user's streams.
        other = register_user(gw, "sse")
        r = open_stream(gw, other, uploading_video(gw, other)[0])
        assert r.status_code == 200
        r.close()
        # Closing a stream frees its slot (the server notices at its next keep-alive write).
        held.pop().close()
        deadline, again = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            again = open_stream(gw, user, vid)
            if again.status_code == 200:
                break
            again.close()
            time.sleep(0.5)
        assert again.status_code == 200
        held.append(again)
    finally:
        close_all(held)


def test_many_streams_do_not_starve_uploads_or_the_api(gw):
    users = [register_user(gw, "flood") for _ in range(10)]
    targets = [(u, uploading_video(gw, u)[0]) for u in users for _ in range(PER_USER)]   # 20 > 16 threads
    with ThreadPoolExecutor(len(targets)) as pool:
        streams = list(pool.map(lambda t: open_stream(gw, *t), targets))
    try:
        statuses = [s if isinstance(s, str) else s.status_code for s in streams]
        assert set(statuses) <= {200, 429}, statuses                # every request answered at once
        assert statuses.count(200) <= 8                              # 4 per worker process
        assert {s.json()["code"] for s in streams if s.status_code == 429} <= {"streams_busy"}
        # With the streams open, uploads and other calls answer promptly.
        me = users[0]
        started = time.monotonic()
        assert requests.get(f"{gw}/api/videos/mine", headers=bearer(me), timeout=10).status_code == 200
        vid, location = uploading_video(gw, me)
        r = requests.patch(gw + location, data=b"x" * 100, timeout=10, headers={
            **TUS, **bearer(me), "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204 and r.headers["Upload-Offset"] == "100"
        assert requests.head(gw + location, headers={**TUS, **bearer(me)}, timeout=10).status_code == 200
        assert time.monotonic() - started < 10
    finally:
        close_all(streams)
