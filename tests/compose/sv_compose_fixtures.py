"""Fixtures for the compose smoke suite (a pytest plugin loaded by tests/compose/pytest.ini): the running project and one registered user
shared by the phases (smoke -> scaling -> restart with data intact)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import Gateway, User  # noqa: E402
from media import make_clip, wait_ready  # noqa: E402
from svcompose import Compose  # noqa: E402


@pytest.fixture(scope="session")
def compose() -> Compose:
    return Compose()


@pytest.fixture(scope="session")
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture(scope="session")
def user(gateway: Gateway) -> User:
    """A viewer registered through the gateway once per run (persists across down/up)."""
    u = gateway.new_user()
    r = gateway.register(u)
    assert r.status_code == 201, r.text
    return u


@pytest.fixture(scope="session")
def ready_video(gateway: Gateway, user: User, tmp_path_factory) -> dict:
    """One public video uploaded through the gateway and processed by the workers."""
    clip = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=8, size="640x360")
    assert gateway.login(user).status_code == 200
    t0 = time.monotonic()
    with open(clip, "rb") as f:
        r = gateway.post("/api/videos", headers={"Authorization": f"Bearer {user.access_token}"},
                         data={"title": "compose smoke", "description": "generated", "visibility": "public"},
                         files={"file": ("clip.mp4", f, "video/mp4")}, timeout=120)
    assert r.status_code == 201, r.text
    video = r.json()["video"]
    video = wait_ready(gateway, user, video["id"])
    print(f"\nuploaded {clip.stat().st_size} bytes; ready after {time.monotonic() - t0:.1f}s", flush=True)
    return video
