"""Phase 2b — crashes under load (issue #18 item 8). One container of each service, in a
seeded random order and at a random moment, loses its main process to SIGKILL sent from the
host: what the kernel's OOM killer or a segfault does. (`docker kill` would not do: Docker
marks a container killed through its API as stopped by hand, and restart policies rightly
leave those alone.) The `restart: unless-stopped` policy brings each back and its
healthcheck turns healthy; meanwhile a viewer keeps playing (a client that retries as the
player does) and a video uploaded before the first crash is processed to ready, a worker
crash included. Recovery time per service is printed."""
from __future__ import annotations

import json
import random
import subprocess
import threading
import time

import pytest

from client import Gateway, User
from media import ContractClient, make_clip, wait_ready
from support.contract_client import _index_of
from svcompose import Compose

VICTIMS = ["auth-svc", "upload-svc", "file-svc", "streaming-svc", "watermark-svc", "watermark-worker", "gateway"]
RECOVERY_TIMEOUT = 180


def inspect(container_id: str) -> dict:
    return json.loads(subprocess.run(["docker", "inspect", container_id], check=True, text=True,
                                     stdout=subprocess.PIPE).stdout)[0]


def crash(container_id: str) -> int:
    """SIGKILL the container's main process from the host; its restart count before."""
    info = inspect(container_id)
    assert info["State"]["Running"] and info["State"]["Pid"] > 0, info["State"]
    subprocess.run(["kill", "-KILL", str(info["State"]["Pid"])], check=True)
    return info["RestartCount"]


def wait_restarted(container_id: str, restarts_before: int) -> float:
    """Seconds until Docker restarted the container and its healthcheck says healthy."""
    t0 = time.monotonic()
    while True:
        info = inspect(container_id)
        state = info["State"]
        health = (state.get("Health") or {}).get("Status", "none")
        if info["RestartCount"] > restarts_before and state["Running"] and health in ("healthy", "none"):
            return time.monotonic() - t0
        assert time.monotonic() - t0 < RECOVERY_TIMEOUT, \
            f"{info['Name']} not back after {RECOVERY_TIMEOUT} s: restarts {info['RestartCount']}, {state}"
        time.sleep(0.5)


class Viewer(threading.Thread):
    """Plays the ready video in a loop: fetches and decrypts segments of its session, opens a
    new session when one is refused (the player's renewal), and retries a failed request
    after a pause, as the player does; counts what went through and the longest outage."""

    def __init__(self, gateway: Gateway, user: User, video_id: str) -> None:
        super().__init__(daemon=True)
        self.base, self.user, self.video_id = gateway.base, user, video_id
        self.stop = threading.Event()
        self.segments, self.errors, self.longest_gap = 0, [], 0.0

    def run(self) -> None:
        client = session = rep = None
        last_ok = time.monotonic()
        i = 0
        while not self.stop.is_set():
            try:
                if client is None:
                    client = ContractClient(self.base).login(self.user.username, self.user.password)
                if session is None:
                    session = client.open_session(self.video_id)
                    rep = min((r for r in client.representations(session) if r.kind == "video"),
                              key=lambda r: r.height or 0)
                url = rep.segment_urls[i % len(rep.segment_urls)]
                client.fetch(session, url, rep.id, _index_of(url, i % len(rep.segment_urls)))
                if i % 5 == 0:   # cached segments bypass the services: the session's own init and
                    client.fetch(session, rep.init_url)           # heartbeat go through them
                    client.heartbeat(session, float(2 * (i % len(rep.segment_urls))))
                self.segments += 1
                i += 1
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
                time.sleep(0.2)
            except Exception as exc:  # noqa: BLE001 - a crash in progress: retry as the player does
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                code = getattr(getattr(exc, "response", None), "status_code", None)
                if code == 401:                       # login lost: log in again
                    client = session = None
                elif code in (403, 404, 410):         # session refused or ended: a new one
                    session = None
                time.sleep(1)


@pytest.fixture(scope="module")
def uploaded(gateway: Gateway, user: User, tmp_path_factory) -> dict:
    """A video uploaded just before the crashes: still processing when the worker dies."""
    clip = make_clip(tmp_path_factory.mktemp("crash") / "clip.mp4", seconds=12, size="640x360")
    assert gateway.login(user).status_code == 200
    with open(clip, "rb") as f:
        r = gateway.post("/api/videos", headers={"Authorization": f"Bearer {user.access_token}"},
                         data={"title": "crash test", "description": "", "visibility": "private"},
                         files={"file": ("clip.mp4", f, "video/mp4")}, timeout=120)
    assert r.status_code == 201, r.text
    return r.json()["video"]


def test_each_service_recovers_from_a_crash_under_load(compose: Compose, gateway: Gateway, user: User,
                                                       ready_video: dict, uploaded: dict):
    rng = random.Random(25)
    order = VICTIMS[:]
    rng.shuffle(order)
    order.remove("watermark-worker")
    order.insert(0, "watermark-worker")          # first: while the upload above is being processed
    viewer = Viewer(gateway, user, ready_video["id"])
    viewer.start()
    recovery = {}
    try:
        for name in order:
            time.sleep(rng.uniform(0.5, 3.0))    # a random moment of the workload
            victim = rng.choice(compose.containers(name))
            segments_before = viewer.segments
            restarts = crash(victim["id"])
            recovery[name] = wait_restarted(victim["id"], restarts)
            # Served again end to end: the viewer gets segments after the restart.
            deadline = time.monotonic() + 60
            while viewer.segments < segments_before + 3:
                assert viewer.is_alive() and time.monotonic() < deadline, \
                    f"playback did not resume after {name} restarted: {viewer.errors[-5:]}"
                time.sleep(0.3)
    finally:
        viewer.stop.set()
        viewer.join(30)
    print("\nrecovery after SIGKILL (restart + healthy): "
          + ", ".join(f"{k} {v:.1f}s" for k, v in recovery.items())
          + f"; viewer: {viewer.segments} segments, {len(viewer.errors)} retried requests, "
          f"longest gap {viewer.longest_gap:.1f}s", flush=True)
    # The upload the client was told succeeded is intact and becomes playable.
    video = wait_ready(gateway, user, uploaded["id"])
    assert video["status"] == "ready"
    c = ContractClient(gateway.base).login(user.username, user.password)
    s = c.open_session(uploaded["id"])
    rep = min((r for r in c.representations(s) if r.kind == "video"), key=lambda r: r.height or 0)
    for i, url in enumerate(rep.segment_urls):
        c.fetch(s, url, rep.id, _index_of(url, i))
    c.end(s)
