"""Playback test helpers: the short timings streaming-svc is restarted on (see the ``play``
fixture in tests/conftest.py), viewers with a contract client, and session/DB shortcuts that
put a session past its expiry or rotation time instead of sleeping it out."""
from __future__ import annotations

import time
from typing import Callable

import requests

from tests.support.contract_client import ContractClient, ContractError
from tests.support.videos import register_user, sql

# Short timings so rotation, expiry and grace can be observed within a test.
PLAYBACK_ENV = {"KEY_ROTATION_SECONDS": "4", "KEY_GRACE_SECONDS": "30", "HEARTBEAT_SECONDS": "2",
                "SESSION_TTL_SECONDS": "8", "SESSION_CACHE_SECONDS": "0.5", "MAX_CONCURRENT_STREAMS": "3",
                "UNLOCK_MAX_FAILURES": "3"}
VIDEO_PASSWORD = "open sesame 42"


def viewer(gw: str, prefix: str = "viewer") -> tuple[dict, ContractClient]:
    user = register_user(gw, prefix)
    return user, ContractClient(gw).login(user["username"], user["password"])


def events_of(conn, user_id: str, kind: str) -> int:
    return sql(conn, "SELECT COUNT(*) AS n FROM security_events WHERE user_id = %s AND kind = %s",
               (user_id, kind), one=True)["n"]


def backdate_session(conn, session_id: str, column: str, seconds: float) -> None:
    """Move a session timestamp (``expires_at``, ``epoch_started_at``, ``started_at``: the key
    pacing budget grows with the time since it) into the past."""
    assert column in ("expires_at", "epoch_started_at", "started_at")
    sql(conn, f"UPDATE playback_sessions SET {column} = UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND "
              "WHERE id = %s", (int(seconds * 1_000_000), session_id))


def get_until(url: str, accept: Callable[[requests.Response], bool], timeout_s: float = 10) -> requests.Response:
    """GET ``url`` until ``accept`` takes the response (streaming-svc caches a session for
    SESSION_CACHE_SECONDS, so a change in the database shows up within that) and return it."""
    deadline = time.monotonic() + timeout_s
    while not accept(r := requests.get(url)):
        assert time.monotonic() < deadline, f"timed out on {url}: last answer {r.status_code} {r.text[:200]}"
        time.sleep(0.1)
    return r


def refused_until(call: Callable[[], object], timeout_s: float = 10) -> ContractError:
    """Call until it is refused and return the refusal. Key requests read the session from
    a per-process cache (SESSION_CACHE_SECONDS): after a change in the database, the other
    gunicorn process may still serve from its copy for that long."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            call()
        except ContractError as err:
            return err
        assert time.monotonic() < deadline, "still served after the change"
        time.sleep(0.1)
