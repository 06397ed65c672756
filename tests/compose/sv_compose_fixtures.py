"""Fixtures for the compose smoke suite (a pytest plugin loaded by tests/compose/pytest.ini): the running project and one registered user
shared by the phases (smoke -> scaling -> restart with data intact)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import Gateway, User  # noqa: E402
from media import make_clip, upload_ready  # noqa: E402
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
    return gateway.signed_up()


@pytest.fixture(scope="session")
def ready_video(gateway: Gateway, user: User, tmp_path_factory) -> dict:
    """One public video uploaded through the gateway and processed by the workers."""
    clip = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=8, size="640x360")
    return upload_ready(gateway, user, clip, "compose smoke")
