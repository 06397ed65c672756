"""Kill anything, lose nothing (issue #18 item 2): the fault-injection matrix, run by `make
test-reliability` against a stack started as `make up` starts it (supervised), named
``<test stack>-fim`` on ports 700 above the test stack's (no port in common with it or with
test_supervision's +500).

A mixed workload runs throughout: a viewer plays (retrying as the player does), uploads go in
by POST and by tus (resumed after failures, as tus-js-client does), videos are processed, and
a forensic trace of a leaked stream is under way. Meanwhile every program of the stack —
gateway, auth-svc, upload-svc, file-svc, streaming-svc, watermark-svc, the media worker,
MariaDB and SeaweedFS — is SIGKILLed, one at a time, in a seeded random order at a random
moment, and supervisord restarts it. Afterwards: every upload the suite acknowledged is intact,
becomes ready and plays; the viewer played on after the last crash; the trace names the leaking
session; no job is dead or left behind; and the consistency checker (fsck, the oracle) is clean
after ``--repair`` of what it may repair (a POST cut by a crash can leave what only it may
clean). Recovery time per program is printed."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import mysql.connector
import pytest
import requests

from stack.layout import ROOT, SERVICES, TEST, Stack
from stack.secrets import read_env_file
from tests.support.contract_client import ContractClient, _index_of
from tests.support.supervised import (FAST_AND_UNTHROTTLED, PROGRAMS, FirstVideo, SupervisedStack, answers,
                                      wait_ready, wait_until)
from tests.support.workload import Uploader, Viewer

pytestmark = [pytest.mark.heavy, pytest.mark.reliability]

STACK = Stack(f"{TEST.name}-fim", TEST.offset + 700)
SEED = 18
RECOVERY_BOUND = 60          # a killed program serves again within this (MariaDB: crash recovery)
TUNING = {"S3_CONNECT_TIMEOUT_SECONDS": "1", "S3_READ_TIMEOUT_SECONDS": "3", "S3_MAX_ATTEMPTS": "1",
          **FAST_AND_UNTHROTTLED,
          # A killed worker's job is claimed again once its lease lapses: short, so the test is.
          "WORKER_LEASE_SECONDS": "10"}
SUP = SupervisedStack(STACK, TUNING)


def _ready_probe(program: str):
    """What "serving again" means for each program."""
    if program in SERVICES:
        return lambda: answers(f"{STACK.url(program)}/readyz")
    if program == "gateway":
        return lambda: answers(f"{STACK.gateway_url}/gateway/healthz")
    if program == "mariadb":
        return lambda: all(answers(f"{STACK.url(s)}/readyz") for s in ("auth", "upload", "streaming"))
    if program == "s3":
        return lambda: answers(f"{STACK.url('file')}/readyz")
    return lambda: "RUNNING" in SUP.ctl("status", program)


def crash(program: str) -> float:
    """SIGKILL the program's main process; seconds until supervisord restarted it and it serves."""
    old = SUP.pid_of(program)
    assert old, SUP.ctl("status")
    os.kill(old, signal.SIGKILL)
    probe = _ready_probe(program)
    return wait_until(lambda: SUP.pid_of(program) not in (0, old) and "RUNNING" in SUP.ctl("status", program)
                      and probe(), RECOVERY_BOUND, f"{program} back after SIGKILL", step=0.3)


def db(secrets: dict):
    return mysql.connector.connect(host="127.0.0.1", port=STACK.mariadb_port, user="streamvault",
                                   password=secrets["DB_PASSWORD"], database="streamvault", autocommit=True)


def fsck(*args: str) -> tuple[int, dict]:
    env = {**os.environ, **read_env_file(STACK.var / "env" / "fsck.env"), "LOG_LEVEL": "ERROR"}
    proc = subprocess.run([sys.executable, "-m", "watermark_svc.fsck", "--json", "--grace", "0", *args],
                          cwd=ROOT / "watermark-svc", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def plays(gw: str, owner: dict, video_id: str) -> int:
    c = ContractClient(gw).login(owner["username"], owner["password"])
    s = c.open_session(video_id)
    rep = min((r for r in c.representations(s) if r.kind == "video"), key=lambda r: r.height or 0)
    for i, url in enumerate(rep.segment_urls):
        c.fetch(s, url, rep.id, _index_of(url, i))
    c.end(s)
    return len(rep.segment_urls)


@pytest.fixture(scope="module")
def fim(tmp_path_factory):
    with SUP.with_first_video("fim", tmp_path_factory.mktemp("fim")) as first:
        yield first


def admin_auth(gw: str, fim: FirstVideo) -> dict:
    token = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": fim.secrets["ADMIN_PASSWORD"]},
                          timeout=15).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def trace_submitted(gw: str, fim: FirstVideo, tmp_path) -> tuple[str, str, dict]:
    """A viewer's decrypted stream, submitted for tracing as the admin: (job, session, admin auth)."""
    owner = fim.owner
    c = ContractClient(gw).login(owner["username"], owner["password"])
    s = c.open_session(fim.video_id)
    rep = min((r for r in c.representations(s) if r.kind == "video"), key=lambda r: r.height or 0)
    leak = c.download(s, rep.id, tmp_path / "leak.mp4")
    c.end(s)
    auth = admin_auth(gw, fim)
    with open(leak, "rb") as fh:
        r = requests.post(f"{gw}/api/forensics/detect", files={"file": ("leak.mp4", fh, "video/mp4")},
                          data={"video_id": fim.video_id}, headers=auth, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["job_id"], s.id, auth


def test_kill_anything_lose_nothing(fim, tmp_path):
    gw, owner, clip = fim.gw, fim.owner, fim.clip
    rng = random.Random(SEED)
    order = list(PROGRAMS)
    rng.shuffle(order)
    job, leaking_session, admin = trace_submitted(gw, fim, tmp_path)
    viewer = Viewer(gw, owner["username"], owner["password"], fim.video_id)
    viewer.start()
    outcomes, threads, failures, recovery = [], [], [], {}

    def upload(kind: str, n: int) -> None:
        try:
            up = Uploader(gw, owner["username"], owner["password"])
            outcomes.append(up.tus(clip, f"tus {n}") if kind == "tus" else up.post(clip, f"post {n}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(f"{kind} {n}: {exc!r}"[:500])

    try:
        for n, program in enumerate(order):
            t = threading.Thread(target=upload, args=("tus" if n % 2 else "post", n), daemon=True)
            t.start()
            threads.append(t)
            time.sleep(rng.uniform(0.2, 2.5))          # a random moment of the workload
            segments_before = viewer.segments
            recovery[program] = crash(program)
            wait_until(lambda: viewer.segments >= segments_before + 3, 60,
                       f"playback after {program}'s crash ({viewer.errors[-3:]})")
        for t in threads:
            t.join(300)
    finally:
        viewer.stop.set()
        viewer.join(30)
    print("\nrecovery after SIGKILL (restarted and serving): "
          + ", ".join(f"{k} {v:.1f}s" for k, v in recovery.items())
          + f"\nviewer: {viewer.segments} segments, {len(viewer.errors)} retried requests, longest gap "
          f"{viewer.longest_gap:.1f}s; uploads: " + ", ".join(f"{o.kind} {o.retries} retries" for o in outcomes),
          flush=True)
    assert not failures, failures
    assert len(outcomes) == len(order) and all(o.video_id for o in outcomes)

    # Every acknowledged upload is intact: it becomes ready and every segment decrypts.
    for o in outcomes:
        wait_ready(gw, owner, o.video_id, 300)
        assert plays(gw, owner, o.video_id) >= 2

    # The trace names the leaking session, crashes and all.
    body = {}

    def traced() -> bool:
        nonlocal body
        r = requests.get(f"{gw}/api/forensics/detect/{job}", headers=admin, timeout=10)
        if r.status_code == 401:            # the run outlived the 5-min access token
            admin.update(admin_auth(gw, fim))
            return False
        body = r.json()
        assert body.get("status") != "failed", body
        return body.get("status") == "done"
    wait_until(traced, 300, "trace done", step=1)
    assert body["result"]["match"] and body["result"]["match"]["session_id"] == leaking_session, body

    # No job lost: the queue drains (the low-priority reference and storyboard jobs last),
    # nothing dead-lettered.
    conn = db(fim.secrets)
    cur = conn.cursor(dictionary=True)

    def unfinished() -> list[dict]:
        cur.execute("SELECT kind, status, COUNT(*) AS n FROM jobs WHERE status <> 'done' GROUP BY kind, status")
        rows = cur.fetchall()
        assert not any(r["status"] == "dead" for r in rows), rows
        return rows
    wait_until(lambda: not unfinished(), 300, "every job done", step=1)
    conn.close()

    # The oracle: clean once what it may repair is repaired.
    code, report = fsck("--repair")
    print("fsck --repair: " + (", ".join(f"{f['kind']} {f['subject']}" for f in report["findings"]) or "clean"),
          flush=True)
    code, report = fsck()
    assert code == 0 and report["clean"], report
