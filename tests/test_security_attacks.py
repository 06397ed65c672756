"""A table of attacks, one row per class the security-hardening issue names, run for real
through the gateway against the live stack (real MariaDB, SeaweedFS, nginx, gunicorn).

Every row asserts three things: the attack is refused with a clear 4xx (JSON where the route
is an API), the services stay responsive afterwards, and nothing was written — no new rows in
the tables an attacker could fill, no new objects in the bucket, no temporary files held open by
a service. Rows that need a precondition (a video, a session, a device) get it from module
fixtures built before the ledger is read."""
from __future__ import annotations

import base64
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from svcommon.passwords import hash_password
from tests.support.attacks import ATTACKS, Actor, actor, profile
from tests.support.contract_client import ContractClient, ContractError
from tests.support.ledger import read_ledger, s3_counter
from tests.support.media import ONE_RUNG, make_clip
from tests.support.videos import make_ready_video, register_user

pytestmark = pytest.mark.heavy

VIDEO_PASSWORD = "attack table video password"


@pytest.fixture(scope="module")
def s3_count(live_stack):
    return s3_counter(live_stack["env"])


@pytest.fixture(scope="module")
def gw(live_stack):
    return live_stack["url"]


@pytest.fixture(scope="module")
def alice(gw):
    return actor(gw, "alice")


@pytest.fixture(scope="module")
def mallory(gw):
    return actor(gw, "mallory")


@pytest.fixture(scope="module")
def world(live_stack, worker_app, mdb, stores, alice, tmp_path_factory):
    """Alice's things: a public and a password video (processed), a private one, a playback
    session, a pending tus upload."""
    clip = make_clip(tmp_path_factory.mktemp("atk") / "clip.mp4", seconds=4, size=ONE_RUNG).read_bytes()
    public = make_ready_video(worker_app, mdb, stores, alice.user["id"], clip, title="alice public")
    locked = make_ready_video(worker_app, mdb, stores, alice.user["id"], clip, title="alice locked",
                              visibility="password", password_hash=hash_password(VIDEO_PASSWORD))
    private = make_ready_video(worker_app, mdb, stores, alice.user["id"], clip, title="alice private",
                               visibility="private")
    session = alice.client.open_session(public)
    gwurl = live_stack["url"]
    r = requests.post(f"{gwurl}/api/uploads", headers={**alice.bearer, "Tus-Resumable": "1.0.0",
                                                        "Upload-Length": "1000",
                                                        "Upload-Metadata": "filename " + base64.b64encode(b"a.mp4").decode()})
    assert r.status_code == 201, r.text
    upload_url = r.headers["Location"] if r.headers["Location"].startswith("http") else gwurl + r.headers["Location"]
    return {"public": public, "locked": locked, "private": private, "session": session, "upload": upload_url}



@pytest.fixture(scope="module")
def admin(gw, live_stack):
    r = requests.post(f"{gw}/api/auth/login", json={"username": live_stack["env"]["ADMIN_USERNAME"],
                                                     "password": live_stack["env"]["ADMIN_PASSWORD"]}, timeout=10)
    assert r.status_code == 200, r.text
    return Actor({**r.json()["user"], "access_token": r.json()["access_token"]}, ContractClient(gw))


@pytest.fixture(scope="module")
def ctx(gw, alice, mallory, admin, world):
    return {"gw": gw, "alice": alice, "mallory": mallory, "admin": admin, "world": world}


def _status(result) -> tuple[int, bytes]:
    if isinstance(result, requests.Response):
        return result.status_code, result.content
    return result[0], result[1]


def _responsive(ctx) -> None:
    """The services still answer promptly, for a real user, after the attack."""
    t0 = time.monotonic()
    assert requests.get(f"{ctx['gw']}/auth/login", timeout=5).status_code == 200
    assert profile(ctx, headers=ctx["alice"].bearer).status_code == 200
    r = requests.get(f"{ctx['gw']}/api/library", headers=ctx["alice"].bearer, timeout=5)
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_refused_cleanly(attack, ctx, mdb, s3_count, live_stack):
    before = read_ledger(mdb, s3_count, live_stack)
    status, body = _status(attack.run(ctx))
    assert status in attack.expect, f"{attack.name}: got {status} {body[:300]!r}"
    if isinstance(body, bytes) and body.lstrip().startswith(b"{"):
        payload = json.loads(body)
        assert payload.get("code") and payload.get("error"), payload
    _responsive(ctx)
    after = read_ledger(mdb, s3_count, live_stack)
    assert after.rows == before.rows, f"{attack.name} wrote rows"
    assert after.objects == before.objects, f"{attack.name} wrote objects"
    assert after.temp_files == [] or set(after.temp_files) <= set(before.temp_files), after.temp_files


def test_the_victims_things_survive_the_table(ctx, mdb):
    """After every IDOR row ran, Alice's video, device and session are intact."""
    cur = mdb.cursor()
    cur.execute("SELECT title FROM videos WHERE id = %s", (ctx["world"]["public"],))
    assert cur.fetchone() == ("alice public",)
    cur.close()
    assert ctx["alice"].client.security(ctx["world"]["session"])
    devices = requests.get(f"{ctx['gw']}/api/devices", headers=ctx["alice"].bearer, timeout=10).json()
    assert ctx["alice"].client.device_id in json.dumps(devices)


# ---- scenarios: lockout, password guessing, grants after changes, slow senders ---------------
def _login_from(live_stack, address: str, username: str, password: str) -> requests.Response:
    """A login as it reaches auth-svc from the gateway for a client at ``address`` (auth-svc
    trusts exactly one proxy hop, the gateway, which always replaces X-Forwarded-For)."""
    return requests.post(f"{live_stack['stack'].url('auth')}/api/auth/login", timeout=15,
                         json={"username": username, "password": password}, headers={"X-Forwarded-For": address})


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_lockout_attempt_does_not_lock_the_owner_out(who, ctx, live_stack, mdb, s3_count):
    """An attacker failing again and again on an account (even the admin's) is throttled; the
    owner, from their own address, still logs in with the right password."""
    username = ctx[who].user["username"]
    password = ctx[who].user.get("password") or live_stack["env"]["ADMIN_PASSWORD"]
    before = read_ledger(mdb, s3_count, live_stack)
    statuses = [_login_from(live_stack, "203.0.113.66", username, "wrong password!").status_code for _ in range(12)]
    assert set(statuses) <= {401, 429} and statuses[-1] == 429, statuses
    # the attacker with the right password is still held back at their address...
    assert _login_from(live_stack, "203.0.113.66", username, password).status_code == 429
    # ...while the owner gets in from theirs.
    ok = _login_from(live_stack, "198.51.100.20", username, password)
    assert ok.status_code == 200, ok.text
    after = read_ledger(mdb, s3_count, live_stack)
    assert {k: after.rows[k] - before.rows[k] for k in after.rows} == {
        **{k: 0 for k in after.rows}, "refresh_tokens": 1}           # only the owner's login wrote


def test_video_password_guessing_does_not_scale_with_signups(ctx, live_stack):
    """Each new account gets its own few guesses, but the video's budget is shared."""
    gw, vid = ctx["gw"], ctx["world"]["locked"]
    guessers = [register_user(gw, f"guess{n}") for n in range(7)]     # signed up first: sign-ups are slow
    statuses, started = [], time.monotonic()
    for n, guesser in enumerate(guessers):
        for _ in range(4):             # under the per-account limit
            statuses.append(requests.post(f"{gw}/api/videos/{vid}/unlock", json={"password": f"guess {n}"},
                                          headers={"Authorization": f"Bearer {guesser['access_token']}"},
                                          timeout=10).status_code)
    # The video's budget (streaming-svc defaults: 20 wrong passwords, one more every 30 s) may
    # have regained an attempt per 30 s the loop took on a loaded machine, plus one at the start.
    refilled = int((time.monotonic() - started) // 30) + 1
    assert statuses[0] == 403 and statuses[-1] == 429, statuses
    assert statuses.count(403) <= 20 + refilled, statuses


def test_grants_do_not_outlive_a_password_change(ctx, live_stack, worker_app, mdb, stores, tmp_path):
    gw, alice = ctx["gw"], ctx["alice"]
    clip = make_clip(tmp_path / "g.mp4", seconds=4, size=ONE_RUNG).read_bytes()
    vid = make_ready_video(worker_app, mdb, stores, alice.user["id"], clip, title="grant",
                           visibility="password", password_hash=hash_password(VIDEO_PASSWORD))
    viewer = actor(gw, "grantee")
    r = requests.post(f"{gw}/api/videos/{vid}/unlock", json={"password": VIDEO_PASSWORD}, headers=viewer.bearer,
                      timeout=10)
    assert r.status_code == 204, r.text
    s = viewer.client.open_session(vid)
    r = requests.patch(f"{gw}/api/videos/{vid}", json={"password": "a brand new password"}, headers=alice.bearer,
                       timeout=10)
    assert r.status_code == 200, r.text
    with pytest.raises(ContractError) as beat:
        viewer.client.heartbeat(s, 1.0)
    assert beat.value.status == 403
    with pytest.raises(ContractError) as again:
        viewer.client.open_session(vid)
    assert again.value.status == 403


def test_slow_senders_do_not_starve_the_services(ctx, live_stack):
    """Forty clients announce a small body and never send it; a real user still logs in."""
    host = urlsplit(ctx["gw"]).netloc
    u = urlsplit(ctx["gw"])
    socks = []
    try:
        for _ in range(40):
            s = socket.create_connection((u.hostname, u.port), timeout=5)
            s.sendall((f"POST /api/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: 1000\r\n\r\n{{\"user").encode())
            socks.append(s)
        t0 = time.monotonic()
        _responsive(ctx)
        r = requests.post(f"{ctx['gw']}/api/auth/login", timeout=5,
                          json={"username": ctx["alice"].user["username"], "password": ctx["alice"].user["password"]})
        assert r.status_code == 200 and time.monotonic() - t0 < 5
    finally:
        for s in socks:
            s.close()
