"""`make up`'s supervision and dependency outages, against a stack started exactly as `make up`
starts it (`python -m stack up`: supervisord, gates, gunicorn, a media worker, nginx), named
``<test stack>-sup`` on ports 500 above the test stack's, so no other test's stack is touched.

- SIGKILL of streaming-svc's gunicorn master and of the media worker, then of the gateway's
  nginx master: every other route keeps answering through the gateway, the killed program is
  back (a new pid, serving) within RESTART_BOUND seconds and its old processes are gone.
- MariaDB stopped, S3 frozen (SIGSTOP: it still accepts connections and never answers, the
  worst case for timeouts): login, the library, a manifest, a segment and an upload answer 503
  + Retry-After + JSON {"error","code"} within the client's timeout, /readyz names the
  dependency, and all of it serves again within RECOVERY_BOUND seconds of the dependency's
  return, no service restarted.
- `stack down` stops every process it started (checked by pid)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from stack.layout import SERVICES, TEST, Stack
from stack.supervision import group_members
from tests.support.contract_client import ContractClient
from tests.support.delivery import session_urls
from tests.support.supervised import FAST_AND_UNTHROTTLED, SupervisedStack, answers, wait_until

pytestmark = [pytest.mark.heavy, pytest.mark.reliability]

STACK = Stack(f"{TEST.name}-sup", TEST.offset + 500)   # no port in common with TEST's (layout.py)
CLIENT_TIMEOUT = 10          # every request here: an answer must come before this
RESTART_BOUND = 30           # a killed program serves again within this (loaded CI machine)
RECOVERY_BOUND = 10          # after a dependency's return
# Short S3 waits so a frozen S3 costs a request seconds, not a minute (file-svc settings).
TUNING = {"S3_CONNECT_TIMEOUT_SECONDS": "1", "S3_READ_TIMEOUT_SECONDS": "2", "S3_MAX_ATTEMPTS": "1",
          **FAST_AND_UNTHROTTLED}


SUP = SupervisedStack(STACK, TUNING)
ctl, pid_of = SUP.ctl, SUP.pid_of


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    with SUP.with_first_video("sup", tmp_path_factory.mktemp("sup")) as first:
        yield first


def test_a_killed_process_restarts_while_the_others_serve(sup):
    gw, auth = sup.gw, sup.auth
    killed = {name: pid_of(name) for name in ("streaming", "worker")}
    old = {pid for pgid in killed.values() for pid in group_members(pgid)}
    assert len(old) >= 4, old                   # a gunicorn master and two workers, the worker
    for pid in killed.values():
        os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    # Throughout: the gateway, auth-svc and upload-svc keep answering; streaming-svc may be
    # refused (502) only until it is back.
    while True:
        assert requests.get(f"{gw}/gateway/healthz", timeout=CLIENT_TIMEOUT).status_code == 200
        assert requests.get(f"{gw}/api/auth/profile", headers=auth, timeout=CLIENT_TIMEOUT).status_code == 200
        assert requests.get(f"{gw}/api/videos/mine", headers=auth, timeout=CLIENT_TIMEOUT).status_code == 200
        if answers(f"{gw}/api/library", headers=auth) and pid_of("worker") not in (0, killed["worker"]):
            break
        assert time.monotonic() - started < RESTART_BOUND, "streaming-svc or the worker did not come back"
        time.sleep(0.2)
    assert pid_of("streaming") not in (0, killed["streaming"])
    wait_until(lambda: not any(group_members(pgid) for pgid in killed.values()), 15, "old processes gone")

    # The gateway's nginx master: its workers would serve on and keep the port; the restart
    # stops them first (stack gate --name), then the new master binds and serves.
    master = pid_of("gateway")
    old_workers = set(group_members(master)) - {master}
    assert old_workers
    os.kill(master, signal.SIGKILL)
    # The orphaned workers answer meanwhile: back means the old group is gone and the new
    # master (a program of supervisord's, RUNNING) serves.
    wait_until(lambda: not group_members(master) and "RUNNING" in ctl("status", "gateway")
               and answers(f"{gw}/api/library", headers=auth), RESTART_BOUND, "gateway back, old workers gone")
    assert pid_of("gateway") != master
    assert "RUNNING" in ctl("status", "gateway") and "RUNNING" in ctl("status", "streaming")


def _refused(resp: requests.Response, *codes: str) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:300])
    assert int(resp.headers["Retry-After"]) > 0
    body = resp.json()
    assert body["code"] in codes and body["error"], body


def _readyz(service: str) -> dict:
    r = requests.get(f"{STACK.url(service)}/readyz", timeout=CLIENT_TIMEOUT)
    return {**r.json(), "http": r.status_code}


def test_database_outage_answers_503_and_recovers_without_restarts(sup):
    gw, owner, auth = sup.gw, sup.owner, sup.auth
    viewer = ContractClient(gw).login(owner["username"], owner["password"])
    session = viewer.open_session(sup.video_id)
    pids = {name: pid_of(name) for name in SERVICES}
    login = {"username": owner["username"], "password": owner["password"]}

    ctl("stop", "mariadb")
    stopped = time.monotonic()
    calls = {
        "login": lambda: requests.post(f"{gw}/api/auth/login", json=login, timeout=CLIENT_TIMEOUT),
        "library": lambda: requests.get(f"{gw}/api/library", headers=auth, timeout=CLIENT_TIMEOUT),
        "manifest": lambda: requests.get(session.manifest_url, timeout=CLIENT_TIMEOUT),
        "upload": lambda: requests.post(f"{gw}/api/videos", headers=auth, timeout=CLIENT_TIMEOUT,
                                        data={"title": "during outage", "visibility": "private"},
                                        files={"file": ("clip.mp4", sup.clip, "video/mp4")}),
    }
    # A few rounds under a little load (two at once): never a 500, never past the timeout.
    for _ in range(3):
        for name, call in calls.items():
            # Other services may first need auth-svc's signing keys, which it reads from the
            # database too: either way a 503 to retry, never a 401 that would log the user out.
            _refused(call(), "database_unavailable", "auth_unavailable")
    for service in ("auth", "upload", "streaming", "watermark"):
        ready = _readyz(service)
        assert ready["http"] == 503 and ready["checks"]["database"].startswith("fail"), (service, ready)
    assert _readyz("file")["http"] == 200       # file-svc has no database
    assert time.monotonic() - stopped < 60

    starting = subprocess.Popen([str(Path(sys.executable).parent / "supervisorctl"), "-c",
                                 str(STACK.var / "supervisord.conf"), "start", "mariadb"], stdout=subprocess.DEVNULL)
    wait_until(lambda: _accepts(STACK.mariadb_port), 60, "MariaDB back")
    back = time.monotonic()
    wait_until(lambda: calls["login"]().status_code == 200, RECOVERY_BOUND, "login after MariaDB's return")
    assert calls["library"]().status_code == 200
    assert calls["manifest"]().status_code == 200
    assert calls["upload"]().status_code == 201
    assert time.monotonic() - back < RECOVERY_BOUND + 5
    starting.wait(30)
    assert {name: pid_of(name) for name in SERVICES} == pids     # recovered, not restarted


def test_storage_outage_answers_503_and_recovers_without_restarts(sup):
    gw, owner, auth = sup.gw, sup.owner, sup.auth
    viewer = ContractClient(gw).login(owner["username"], owner["password"])
    session = viewer.open_session(sup.video_id)
    init, segments = next(iter(session_urls(gw, session).values()))
    # Segments the gateway has not cached yet (a cached one is served from its cache).
    fresh = iter(segments)
    pids = {name: pid_of(name) for name in SERVICES}

    s3 = pid_of("s3")
    os.kill(s3, signal.SIGSTOP)
    try:
        seg = requests.get(gw + next(fresh), timeout=CLIENT_TIMEOUT)
        _refused(seg, "storage_unavailable")
        up = requests.post(f"{gw}/api/videos", headers=auth, timeout=CLIENT_TIMEOUT,
                           data={"title": "during S3 outage", "visibility": "private"},
                           files={"file": ("clip.mp4", sup.clip, "video/mp4")})
        _refused(up, "storage_unavailable")
        assert _readyz("file")["checks"]["s3"].startswith("fail")
        for service in ("upload", "streaming", "watermark"):
            ready = _readyz(service)
            assert ready["http"] == 503 and "s3" in ready["checks"]["storage"], (service, ready)
            assert ready["checks"]["database"] == "ok"
        # What needs no storage still works.
        assert requests.get(f"{gw}/api/library", headers=auth, timeout=CLIENT_TIMEOUT).status_code == 200
    finally:
        os.kill(s3, signal.SIGCONT)
    back = time.monotonic()
    wait_until(lambda: requests.get(gw + next(fresh), timeout=CLIENT_TIMEOUT).status_code == 200,
               RECOVERY_BOUND, "segments after S3's return")
    up = requests.post(f"{gw}/api/videos", headers=auth, timeout=30,
                       data={"title": "after S3 outage", "visibility": "private"},
                       files={"file": ("clip.mp4", sup.clip, "video/mp4")})
    assert up.status_code == 201, up.text
    assert time.monotonic() - back < RECOVERY_BOUND + 10
    assert _readyz("upload")["http"] == 200
    assert {name: pid_of(name) for name in SERVICES} == pids


def test_down_stops_every_process(sup):
    programs = ("mariadb", "s3", *SERVICES, "worker", "gateway")
    everything = {pid for name in programs for pid in group_members(pid_of(name))} | {SUP.proc.pid}
    assert len(everything) > len(programs)
    SUP.down()
    SUP.proc.wait(30)
    left = [pid for pid in everything if Path(f"/proc/{pid}").exists()
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    assert not left, left
