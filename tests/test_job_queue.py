"""The one job queue (svcommon.jobqueue) on the real database: claims never double up under
racing workers, lapsed leases are reclaimed, retries back off exponentially, dead letters
and the admin retry, priorities. Each test uses its own job kind, so other tests' jobs
(and theirs ours) are never claimed."""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from svcommon import jobqueue as queue
from svcommon.jobqueue import Handler
from svcommon.jobworker import run_once
from tests.support.videos import queue_video, register_user, sql


@pytest.fixture
def kind():
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.fixture
def wdb(worker_app):
    from watermark_svc.extensions import db
    return db


def row(db, job_id):
    return sql(db, "SELECT status, attempts, lease_owner, last_error, step, "
                   "TIMESTAMPDIFF(MICROSECOND, updated_at, run_after) / 1e6 AS wait FROM jobs WHERE id = %s",
               (job_id,), one=True)


def claim(app, wdb, worker, kind, lease=60):
    with app.app_context():
        return queue.claim(wdb, worker, lease, [kind])


def test_two_racing_workers_never_claim_the_same_job(worker_app, wdb, db, kind):
    ids = {queue.enqueue(db, kind, {"n": n}) for n in range(40)}
    got: dict[str, list[str]] = {"w1": [], "w2": []}
    start = threading.Barrier(2)

    def work(name):
        start.wait()
        while (c := claim(worker_app, wdb, name, kind)) is not None:
            got[name].append(c.job.id)

    threads = [threading.Thread(target=work, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(got["w1"]) & set(got["w2"])
    assert sorted(got["w1"] + got["w2"]) == sorted(ids)
    assert got["w1"] and got["w2"]                      # both really took part


def test_lapsed_lease_is_reclaimed_and_the_old_owner_cannot_finish(worker_app, wdb, db, kind):
    job_id = queue.enqueue(db, kind)
    first = claim(worker_app, wdb, "crashed", kind).job
    assert claim(worker_app, wdb, "rescuer", kind) is None          # leased: nothing to claim
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", (job_id,))
    again = claim(worker_app, wdb, "rescuer", kind)
    assert again.job.id == job_id and again.job.attempts == 2 and not again.dead
    assert not queue.renew(db, job_id, "crashed", 60, 50, "encode")
    assert not queue.complete(db, first, "crashed")
    assert queue.complete(db, again.job, "rescuer")
    assert row(db, job_id)["status"] == "done"


def test_lapse_on_the_last_attempt_dead_letters_the_job(worker_app, wdb, db, kind):
    """Its workers died holding the final attempt: the next claim leases it (no new
    attempt) to dead-letter it; run_once runs the cleanup, then dead + on_dead together."""
    calls = []
    handler = Handler(run=lambda app, job, lease: calls.append("run"),
                      cleanup=lambda app, job, exc: calls.append(("cleanup", type(exc).__name__)),
                      on_dead=lambda conn, job, exc: calls.append(("dead", exc, row(conn, job.id)["status"])))
    job_id = queue.enqueue(db, kind, max_attempts=1)
    claim(worker_app, wdb, "crashed", kind)
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", (job_id,))
    c = claim(worker_app, wdb, "rescuer", kind)
    assert c.dead and c.job.id == job_id and c.job.attempts == 1
    st = row(db, job_id)
    assert (st["status"], st["attempts"], st["lease_owner"]) == ("running", 1, "rescuer")   # leased, not yet dead
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", (job_id,))
    assert run_once(worker_app, wdb, {kind: handler}, "rescuer")     # the rescuer died too: taken again
    st = row(db, job_id)
    assert st["status"] == "dead" and st["attempts"] == 1 and "stopped responding" in st["last_error"]
    # Never run again; cleanup before the dead letter; the hook saw the job dead in its transaction.
    assert calls == [("cleanup", "WorkerLost"), ("dead", None, "dead")]


def test_a_failing_dead_letter_hook_leaves_the_lapsed_job_to_be_taken_again(worker_app, wdb, db, kind):
    """The dead letter and the subject's hook are one transaction: when the hook fails,
    the job is not dead (its subject would never learn), its lease lapses and the next
    worker dead-letters it with the hook."""
    told = []

    def on_dead(conn, job, exc):
        if not told:
            told.append("failed")
            raise RuntimeError("the subject's database call failed")
        told.append("told")

    handler = Handler(run=lambda app, job, lease: None, on_dead=on_dead)
    job_id = queue.enqueue(db, kind, max_attempts=1)
    claim(worker_app, wdb, "crashed", kind)
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", (job_id,))
    with pytest.raises(RuntimeError, match="database call failed"):
        run_once(worker_app, wdb, {kind: handler}, "first")
    assert row(db, job_id)["status"] == "running"                    # not dead: nobody was told
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", (job_id,))
    assert run_once(worker_app, wdb, {kind: handler}, "second")
    assert row(db, job_id)["status"] == "dead" and told == ["failed", "told"]


def test_a_failure_after_a_takeover_leaves_the_new_owners_job_alone(worker_app, wdb, db, kind):
    """The handler fails after another worker took its job over, before the renewal
    noticed: no cleanup (it would remove the new owner's outputs), no retry or dead letter
    of the new owner's running job, no subject hooks; it is lost."""
    calls = []

    def fail_after_takeover(app, job, lease):
        sql(db, "UPDATE jobs SET lease_owner = 'new-owner' WHERE id = %s", (job.id,))
        raise RuntimeError("boom")

    handler = Handler(run=fail_after_takeover, permanent=(RuntimeError,),
                      cleanup=lambda app, job, exc: calls.append("cleanup"),
                      on_retry=lambda conn, job, delay: calls.append("retry"),
                      on_dead=lambda conn, job, exc: calls.append("dead"),
                      on_lost=lambda app, job: calls.append("lost"))
    job_id = queue.enqueue(db, kind, max_attempts=3)
    assert run_once(worker_app, wdb, {kind: handler}, "stalled")
    st = row(db, job_id)
    assert (st["status"], st["lease_owner"], st["last_error"]) == ("running", "new-owner", None)
    assert calls == ["lost"]
    job = queue.Job(job_id, kind, {}, None, 0, 1, 3)
    assert not queue.retry(db, job, "stalled", "x", 0) and not queue.dead(db, job, "stalled", "x")
    assert row(db, job_id)["status"] == "running"


def test_progress_interval_is_the_longest_renewal_interval(worker_app, wdb, db, kind):
    """A handler asking for sub-second progress (detections) renews that often, even with
    a long lease; others renew at most every 5 s, and at least three times per lease."""
    from svcommon.jobworker import Lease
    queue.enqueue(db, kind)
    job = claim(worker_app, wdb, "w", kind).job
    with worker_app.app_context():
        assert Lease(wdb, job, "w", 60, max_interval=0.5).interval == 0.5
        assert Lease(wdb, job, "w", 60).interval == 5.0
        assert Lease(wdb, job, "w", 3).interval == 1.0


def test_failures_back_off_exponentially_then_dead_letter(worker_app, wdb, db, kind):
    calls = {"retry": [], "dead": []}

    def fail(app, job, lease):
        raise RuntimeError(f"boom {job.attempts}")

    handlers = {kind: Handler(run=fail, on_retry=lambda conn, job, delay: calls["retry"].append(delay),
                              on_dead=lambda conn, job, exc: calls["dead"].append(str(exc)))}
    job_id = queue.enqueue(db, kind, max_attempts=3)
    base = float(worker_app.config["WORKER_RETRY_BASE_SECONDS"])
    waits = []
    for attempt in (1, 2, 3):
        assert run_once(worker_app, wdb, handlers, "failing")
        st = row(db, job_id)
        assert st["attempts"] == attempt and st["last_error"] == f"boom {attempt}"
        if attempt < 3:
            assert st["status"] == "queued" and not run_once(worker_app, wdb, handlers, "failing")   # waits
            waits.append(float(st["wait"]))
            sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) WHERE id = %s", (job_id,))   # time passes
    assert waits == pytest.approx([base, 4 * base], abs=0.05)
    assert calls == {"retry": [int(base), int(4 * base)], "dead": ["boom 3"]}
    assert row(db, job_id)["status"] == "dead"


def _unreachable_storage():
    """The real file-svc client aimed at a port nobody listens on: what a worker sees while
    file-svc (or auth-svc for its token) restarts."""
    from svcommon.filestore import FileStore
    return FileStore("http://127.0.0.1:9", "http://127.0.0.1:9", "watermark", "secret", timeout=2)


def _unreachable_database():
    import mysql.connector
    return mysql.connector.connect(host="127.0.0.1", port=9, user="x", password="x", connection_timeout=2)


@pytest.mark.parametrize("outage", ["storage", "database", "storage, wrapped"])
def test_an_outage_waits_without_using_an_attempt(worker_app, wdb, db, kind, outage):
    """A job failed by an outage of our own storage or database (real clients against a
    port nobody answers) goes back to the queue with its attempt given back, five times over
    on a one-attempt job, and says what it waits for; the handler's on_wait hears of it, not
    on_retry or on_dead. A refusal by storage is the job's own failure: counted, dead."""
    from svcommon.jobworker import OUTAGE_RETRY_SECONDS

    def fail(app, job, lease):
        if outage == "database":
            _unreachable_database()
        try:
            _unreachable_storage().download("media/x/y", "/nonexistent")
        except Exception as exc:
            if outage == "storage, wrapped":
                raise RuntimeError("could not fetch the suspect") from exc
            raise

    calls = []
    handler = Handler(run=fail, on_retry=lambda conn, job, delay: calls.append("retry"),
                      on_dead=lambda conn, job, exc: calls.append("dead"),
                      on_wait=lambda conn, job, cause, delay: calls.append((cause, delay)))
    job_id = queue.enqueue(db, kind, max_attempts=1)
    for _ in range(5):
        assert run_once(worker_app, wdb, {kind: handler}, "w")
        st = row(db, job_id)
        assert (st["status"], st["attempts"], st["step"]) == ("queued", 0, "waiting for an outage to end")
        assert float(st["wait"]) == pytest.approx(OUTAGE_RETRY_SECONDS, abs=0.05)
        sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) WHERE id = %s", (job_id,))   # time passes
    cause = "the database is unavailable" if outage == "database" else "video storage is unavailable"
    assert st["last_error"].startswith(cause + ": ")
    assert calls == [(cause, OUTAGE_RETRY_SECONDS)] * 5


def test_a_storage_refusal_is_not_an_outage(worker_app, wdb, db, kind):
    from svcommon.filestore import FileStoreError

    def refused(app, job, lease):
        raise FileStoreError(403, "forbidden_prefix", "not under this service's prefixes")

    job_id = queue.enqueue(db, kind, max_attempts=1)
    assert run_once(worker_app, wdb, {kind: Handler(run=refused)}, "w")
    assert (row(db, job_id)["status"], row(db, job_id)["attempts"]) == ("dead", 1)


def test_permanent_error_is_dead_at_once(worker_app, wdb, db, kind):
    def refuse(app, job, lease):
        raise ValueError("not a video we accept")

    job_id = queue.enqueue(db, kind, max_attempts=3)
    assert run_once(worker_app, wdb, {kind: Handler(run=refuse, permanent=(ValueError,))}, "w")
    st = row(db, job_id)
    assert (st["status"], st["attempts"], st["last_error"]) == ("dead", 1, "not a video we accept")


def test_highest_priority_first_and_delayed_jobs_wait(worker_app, wdb, db, kind):
    low, high, mid = (queue.enqueue(db, kind, priority=p) for p in (0, 5, 1))
    queue.enqueue(db, kind, priority=9, delay=3600)
    order = [claim(worker_app, wdb, "w", kind).job.id for _ in range(3)]
    assert order == [high, mid, low] and claim(worker_app, wdb, "w", kind) is None


def test_handler_result_progress_and_cancel_by_guard(worker_app, wdb, db, kind):
    """A handler's progress lands on the job row; a guard turning false (the subject was
    deleted or cancelled) loses the lease: the job is removed and on_lost runs."""
    seen, lost = [], []

    def work(app, job, lease):
        lease.report(40, "halfway")
        lease.confirm()
        seen.append(sql(db, "SELECT progress, step FROM jobs WHERE id = %s", (job.id,), one=True))
        if job.payload.get("cancel"):
            cancelled.set()
            lease.confirm()                                 # raises LeaseLost: the guard says no

    cancelled = threading.Event()
    handler = Handler(run=work, guard=lambda conn, job: not cancelled.is_set(),
                      on_lost=lambda app, job: lost.append(job.id))
    done = queue.enqueue(db, kind, {"cancel": False})
    assert run_once(worker_app, wdb, {kind: handler}, "w")
    assert seen == [{"progress": 40.0, "step": "halfway"}] and row(db, done)["status"] == "done"
    gone = queue.enqueue(db, kind, {"cancel": True})
    assert run_once(worker_app, wdb, {kind: handler}, "w")
    assert row(db, gone) is None and lost == [gone]


def _niceness_once_running(pid: int, program: str) -> int:
    """The niceness of ``pid`` once it has become ``program`` (nice and prlimit exec into it:
    read before that, the niceness may not be set yet)."""
    deadline = time.monotonic() + 10
    comm = Path(f"/proc/{pid}/comm")
    while comm.read_text().strip() != program:
        assert time.monotonic() < deadline, f"{pid} never became {program}"
        time.sleep(0.01)
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_background_jobs_run_their_children_nicer(worker_app, wdb, db, kind, tmp_path):
    """A job queued below the default priority (a video's higher rungs, storyboard, reference,
    detections) runs its ffmpeg children BACKGROUND_NICE nicer, also those a helper thread
    starts for it (the packaging lanes); one at or above 0 (a lowest rung, the audio) as the
    worker runs. Real children, niceness read from the kernel."""
    from svcommon.jobworker import BACKGROUND_NICE
    from watermark_svc.media.procs import ProcessGroup
    seen: dict[str, list[int]] = {}

    def work(app, job, lease):
        group = ProcessGroup(tmp_path / job.id)
        procs = [group.start("own", ["sleep", "5"])]
        helper = threading.Thread(target=lambda: procs.append(group.start("lane", ["sleep", "5"])))
        helper.start()
        helper.join()
        try:
            seen[job.id] = [_niceness_once_running(p.pid, "sleep") for p in procs]
        finally:
            group.kill_all()
            for p in procs:
                p.wait(10)

    base = os.getpriority(os.PRIO_PROCESS, 0)
    jobs = {p: queue.enqueue(db, kind, priority=p) for p in (5, 0, -1, -10)}
    for _ in jobs:
        assert run_once(worker_app, wdb, {kind: Handler(run=work)}, "w")
    assert {p: seen[j] for p, j in jobs.items()} == {
        5: [base] * 2, 0: [base] * 2, -1: [base + BACKGROUND_NICE] * 2, -10: [base + BACKGROUND_NICE] * 2}
    assert all(row(db, j)["status"] == "done" for j in jobs.values())


def _admin(live_stack) -> dict:
    r = requests.post(f"{live_stack['url']}/api/auth/login",
                      json={"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_admin_lists_dead_jobs_and_retries_one(live_stack, worker_app, stores, db, owner_id):
    """Through the gateway: a dead processing job shows in the dead-letter list; the admin's
    retry queues it again with fresh attempts and the video shows it is waiting again."""
    gw, admin = live_stack["url"], _admin(live_stack)
    vid = queue_video(db, stores, owner_id, b"not used: the job is never run here")
    job_id = sql(db, "SELECT id FROM jobs WHERE subject = %s", (vid,), one=True)["id"]
    sql(db, "UPDATE jobs SET status = 'dead', attempts = 3, last_error = 'boom' WHERE id = %s", (job_id,))
    sql(db, "UPDATE videos SET status = 'failed', status_message = 'processing error: boom' WHERE id = %s", (vid,))
    try:
        listed = requests.get(f"{gw}/api/admin/jobs", params={"status": "dead", "limit": 200}, headers=admin)
        assert listed.status_code == 200
        mine = [j for j in listed.json()["items"] if j["id"] == job_id]
        assert mine and mine[0]["kind"] == queue.VIDEO_PROCESS and mine[0]["subject"] == vid
        assert mine[0]["last_error"] == "boom"
        r = requests.post(f"{gw}/api/admin/jobs/{job_id}/retry", headers=admin)
        assert r.status_code == 200 and (r.json()["status"], r.json()["attempts"]) == ("queued", 0), r.text
        assert sql(db, "SELECT status FROM videos WHERE id = %s", (vid,), one=True)["status"] == "queued"
        again = requests.post(f"{gw}/api/admin/jobs/{job_id}/retry", headers=admin)
        assert again.status_code == 409 and again.json()["code"] == "job_not_dead"
        assert requests.post(f"{gw}/api/admin/jobs/{uuid.uuid4().hex}/retry", headers=admin).status_code == 404
        bad = requests.get(f"{gw}/api/admin/jobs", params={"status": "lost"}, headers=admin)
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"
        user = {"Authorization": f"Bearer {register_user(gw, 'nonadmin')['access_token']}"}
        assert requests.get(f"{gw}/api/admin/jobs", headers=user).status_code == 403
        assert requests.post(f"{gw}/api/admin/jobs/{job_id}/retry", headers=user).status_code == 403
    finally:
        sql(db, "UPDATE jobs SET status = 'dead' WHERE id = %s", (job_id,))   # never claimed by later tests


def test_migration_011_moves_the_old_queues_over(live_stack, tmp_path):
    """On a scratch database at migration 010 with rows in both old queues: processing jobs
    keep their state (failed/cancelled → dead, kind video.process, video as subject) and
    unfinished detections become detection.run jobs; finished ones need none."""
    import shutil

    import mysql.connector
    from migrate import MIGRATIONS_DIR, migrate
    from stack.dbsetup import root_kwargs
    name = f"mig011_{uuid.uuid4().hex[:8]}"
    root = mysql.connector.connect(**root_kwargs(live_stack["stack"]))
    root.cursor().execute(f"CREATE DATABASE {name}")
    try:
        old = tmp_path / "upto010"
        old.mkdir()
        for path in MIGRATIONS_DIR.glob("*.sql"):
            if path.name[:3] <= "010":
                shutil.copy(path, old / path.name)
        kw = root_kwargs(live_stack["stack"], name)
        migrate(kw, old, out=lambda *_: None)
        conn = mysql.connector.connect(**kw, autocommit=True)
        for stmt in ("INSERT INTO users (id, username, email, password_hash) VALUES ('u1', 'u1', 'u1@e.test', 'x')",
                     "INSERT INTO videos (id, owner_id, title, description) VALUES ('v1', 'u1', 't', ''), "
                     "('v2', 'u1', 't', '')",
                     "INSERT INTO jobs (id, video_id, kind, status, attempts, error) VALUES "
                     "('j1', 'v1', 'process', 'failed', 3, 'boom'), ('j2', 'v2', 'process', 'queued', 0, NULL), "
                     "('j3', 'v1', 'process', 'cancelled', 1, NULL)",
                     "INSERT INTO detections (id, suspect_key, status, attempts) VALUES "
                     "('d1', 'k', 'queued', 0), ('d2', 'k', 'done', 1), ('d3', 'k', 'running', 1)"):
            conn.cursor().execute(stmt)
        shutil.copy(MIGRATIONS_DIR / "011_job_queue.sql", old)     # 011 alone (later ones are not its business)
        assert migrate(kw, old, out=lambda *_: None) == ["011_job_queue.sql"]
        rows = sql(conn, "SELECT kind, subject, status, attempts, last_error, payload, priority FROM jobs")
        conn.close()
        got = sorted((r["subject"], r["kind"], r["status"], r["attempts"], r["last_error"], json.loads(r["payload"]),
                      r["priority"]) for r in rows)
        assert got == [
            ("d1", "detection.run", "queued", 0, None, {"detection_id": "d1"}, -10),
            ("d3", "detection.run", "running", 1, None, {"detection_id": "d3"}, -10),
            ("v1", "video.process", "dead", 1, None, {"video_id": "v1"}, 0),
            ("v1", "video.process", "dead", 3, "boom", {"video_id": "v1"}, 0),
            ("v2", "video.process", "queued", 0, None, {"video_id": "v2"}, 0)]
    finally:
        root.cursor().execute(f"DROP DATABASE {name}")
        root.close()
