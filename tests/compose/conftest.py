"""Fixtures for the compose smoke suite: the running project and one registered user
shared by the phases (smoke -> scaling -> restart with data intact)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import Gateway, User  # noqa: E402
from compose import Compose  # noqa: E402


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
