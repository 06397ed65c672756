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
import time

import pytest

from client import Gateway, User
from media import ContractClient, make_clip, wait_ready
from support.contract_client import _index_of
from support.workload import Viewer
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
    viewer = Viewer(gateway.base, user.username, user.password, ready_video["id"])
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
