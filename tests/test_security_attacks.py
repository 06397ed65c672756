"""A table of attacks, one row per class the security-hardening issue names, run for real
through the gateway against the live stack (real MariaDB, SeaweedFS, nginx, gunicorn).

Every row asserts three things: the attack is refused with a clear 4xx (JSON where the route
is an API), the services stay responsive afterwards, and nothing was written — no new rows in
the tables an attacker could fill, no new objects in the bucket, no temporary files held open by
a service. Rows that need a precondition (a video, a session, a device) get it from module
fixtures built before the ledger is read."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import pytest
import requests

from svcommon.passwords import hash_password
from tests.ingest_helpers import s3_client, s3_pending_multipart
from tests.support.contract_client import ContractClient, ContractError, b64url
from tests.support.dpop import FINGERPRINT, DeviceKey
from tests.support.media import make_clip
from tests.support.videos import make_ready_video, mdb, register_user, stores, worker_app  # noqa: F401

pytestmark = pytest.mark.heavy

# Tables an attacker's request could leave rows in. security_events, dpop_replay and the
# throttle tables are *meant* to record attacks, so they are not part of the ledger.
LEDGER_TABLES = ["users", "videos", "uploads", "jobs", "playback_sessions", "devices", "refresh_tokens",
                 "video_access_grants", "detections", "video_media"]
VIDEO_PASSWORD = "attack table video password"


# ---- the ledger: rows, objects, temp files ------------------------------------------------------
def _service_pids(live_stack) -> list[int]:
    """Every gunicorn master we started and its workers."""
    masters = {p.pid for name, p in live_stack["procs"].procs if name not in ("mariadb", "seaweed", "gateway")}
    pids = set(masters)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in masters:
                pids.add(int(entry))
    return sorted(pids)


def _open_temp_files(live_stack) -> list[str]:
    """Files a service holds open under a temp directory (spooled request bodies)."""
    held = []
    for pid in _service_pids(live_stack):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(("/tmp/", "/var/tmp/")) or (target.startswith("/") and "(deleted)" in target):
                held.append(f"{pid}:{target}")
    return held


@dataclass
class Ledger:
    rows: dict[str, int]
    objects: int
    temp_files: list[str] = field(default_factory=list)


def read_ledger(conn, s3_count: Callable[[], int], live_stack) -> Ledger:
    cur = conn.cursor()
    rows = {}
    for table in LEDGER_TABLES:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        rows[table] = cur.fetchone()[0]
    cur.close()
    return Ledger(rows, s3_count(), _open_temp_files(live_stack))


@pytest.fixture(scope="module")
def s3_count(live_stack):
    """Objects and pending multipart uploads in the bucket, straight from S3."""
    env = live_stack["env"]

    def count() -> int:
        s3 = s3_client(env)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env["S3_BUCKET"])
        return sum(p.get("KeyCount", 0) for p in pages) + len(s3_pending_multipart(env, ""))
    return count


# ---- actors -------------------------------------------------------------------------------------
@dataclass
class Actor:
    user: dict
    client: ContractClient

    @property
    def bearer(self) -> dict:
        return {"Authorization": f"Bearer {self.user['access_token']}"}


def actor(gw: str, prefix: str) -> Actor:
    user = register_user(gw, prefix)
    return Actor(user, ContractClient(gw).login(user["username"], user["password"]))


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
def world(live_stack, worker_app, mdb, stores, alice, tmp_path_factory):  # noqa: F811
    """Alice's things: a public and a password video (processed), a private one, a playback
    session, a pending tus upload."""
    clip = make_clip(tmp_path_factory.mktemp("atk") / "clip.mp4", seconds=4).read_bytes()
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


# ---- raw HTTP for bodies requests can't send (lying lengths, stalls) ----------------------------
def raw_request(base: str, head: str, body_part: bytes = b"", timeout: float = 10) -> tuple[int, bytes, float]:
    """Send ``head`` (request line + headers, no blank line) and the first bytes of a body;
    return (status, response bytes, seconds until the status line arrived)."""
    u = urlsplit(base)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    t0 = time.monotonic()
    try:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body_part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - t0
    finally:
        sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data, elapsed


# ---- the attack table -------------------------------------------------------------------------
@dataclass
class Attack:
    name: str
    run: Callable[[dict], requests.Response | tuple[int, bytes, float]]
    expect: tuple[int, ...]


def _jwt_unsigned(claims: dict, header: dict) -> str:
    enc = lambda d: b64url(json.dumps(d, separators=(",", ":")).encode())  # noqa: E731
    return f"{enc(header)}.{enc(claims)}."


def _forged_tokens(ctx) -> dict[str, str]:
    """Tokens an attacker can make without the signing key."""
    gw, victim = ctx["gw"], ctx["alice"].user
    now = int(time.time())
    claims = {"sub": victim["id"], "name": victim["username"], "role": "admin", "iss": "streamvault-auth",
              "aud": "streamvault", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    jwks = requests.get(f"{gw}/.well-known/jwks.json").json()
    kid = jwks["keys"][0]["kid"]
    none = _jwt_unsigned(claims, {"alg": "none", "typ": "JWT", "kid": kid})
    # HS256 "signed" with the public key (the classic algorithm-confusion attack).
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(claims).encode())
    mac = hmac.new(json.dumps(jwks["keys"][0]).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{head}.{body}.{b64url(mac)}"
    # A real token of Mallory's with the payload changed to Alice-as-admin, signature kept.
    real = ctx["mallory"].user["access_token"].split(".")
    tampered = f"{real[0]}.{b64url(json.dumps(claims).encode())}.{real[2]}"
    return {"none": none, "confused": confused, "tampered": tampered}


def _profile(ctx, **kw):
    return requests.get(f"{ctx['gw']}/api/auth/profile", timeout=10, **kw)


def token_attacks() -> list[Attack]:
    def forged(kind):
        return lambda ctx: _profile(ctx, headers={"Authorization": f"Bearer {_forged_tokens(ctx)[kind]}"})

    def device_token_in_cookie(ctx):
        return _profile(ctx, cookies={"sv_access": ctx["alice"].client.device_token})

    def device_token_as_bearer(ctx):
        return _profile(ctx, headers={"Authorization": f"Bearer {ctx['alice'].client.device_token}"})

    def proof_from_other_key(ctx):
        url = f"{ctx['gw']}/api/auth/profile"
        token = ctx["alice"].client.device_token
        return _profile(ctx, headers={"Authorization": f"DPoP {token}",
                                      "DPoP": DeviceKey().proof("GET", url, token)})

    def proof_replayed(ctx):
        url = f"{ctx['gw']}/api/auth/profile"
        c = ctx["alice"].client
        headers = c.dpop_headers("GET", url)
        first = _profile(ctx, headers=headers)
        assert first.status_code == 200, first.text
        return _profile(ctx, headers=headers)

    def proof_for_other_url(ctx):
        c = ctx["alice"].client
        return _profile(ctx, headers=c.dpop_headers("GET", f"{ctx['gw']}/api/devices"))

    def proof_from_far_future(ctx):
        url = f"{ctx['gw']}/api/auth/profile"
        c = ctx["alice"].client
        proof = c.device.proof("GET", url, c.device_token, iat=time.time() + 3600)
        return _profile(ctx, headers={"Authorization": f"DPoP {c.device_token}", "DPoP": proof})

    def stolen_device_token_mints_for_own_key(ctx):
        """Mallory holds Alice's device token and asks for a token bound to his own key."""
        url = f"{ctx['gw']}/api/auth/device-token"
        stolen = ctx["alice"].client.device_token
        own = DeviceKey()
        for auth in (f"Bearer {stolen}", f"DPoP {stolen}"):
            r = requests.post(url, json={"fingerprint": FINGERPRINT}, timeout=10,
                              headers={"Authorization": auth, "DPoP": own.proof("POST", url, stolen)})
            if r.status_code < 400:
                return r
        return requests.post(url, json={"fingerprint": FINGERPRINT}, cookies={"sv_access": stolen}, timeout=10,
                             headers={"DPoP": own.proof("POST", url)})

    def cookie_without_csrf(ctx):
        return requests.post(f"{ctx['gw']}/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                             cookies={"sv_access": ctx["alice"].user["access_token"]}, timeout=10,
                             headers={"DPoP": DeviceKey().proof("POST", f"{ctx['gw']}/api/auth/device-token")})

    return [Attack("alg none token", forged("none"), (401,)),
            Attack("HS256 token keyed with the public JWK", forged("confused"), (401,)),
            Attack("payload swapped under a real signature", forged("tampered"), (401,)),
            Attack("device token in the cookie without a proof", device_token_in_cookie, (401,)),
            Attack("device token as a plain bearer", device_token_as_bearer, (401,)),
            Attack("DPoP proof from another key", proof_from_other_key, (401,)),
            Attack("DPoP proof replayed", proof_replayed, (401,)),
            Attack("DPoP proof for another URL", proof_for_other_url, (401,)),
            Attack("DPoP proof an hour in the future", proof_from_far_future, (401,)),
            Attack("stolen device token mints a token for the thief's key", stolen_device_token_mints_for_own_key,
                   (401, 403)),
            Attack("cookie-authenticated POST without CSRF token", cookie_without_csrf, (403,))]


def body_attacks() -> list[Attack]:
    big = 64 * 1024 * 1024

    def lying_length(path, ctype="application/json", auth=""):
        def run(ctx):
            host = urlsplit(ctx["gw"]).netloc
            head = (f"POST {path} HTTP/1.1\nHost: {host}\nContent-Type: {ctype}\nContent-Length: {big}\n"
                    f"Connection: close{auth}")
            return raw_request(ctx["gw"], head, b"{" + b" " * 65536)
        return run

    def chunked_flood(ctx):
        """No Content-Length: 8 MiB of JSON whitespace, chunked, to an anonymous route."""
        def gen():
            yield b'{"username": "x", "password": "'
            for _ in range(128):
                yield b"a" * 65536
            yield b'"}'
        try:
            return requests.post(f"{ctx['gw']}/api/auth/login", data=gen(), timeout=20,
                                 headers={"Content-Type": "application/json"})
        except requests.ConnectionError:   # refused mid-body: the server closed on us, still no 5xx
            return (413, b"closed while sending", 0.0)

    def multipart_login(ctx):
        files = {"junk": ("j.bin", b"\0" * (4 * 1024 * 1024))}
        return requests.post(f"{ctx['gw']}/auth/login", data={"username": "x", "password": "y"}, files=files,
                             timeout=20)

    def malformed_json(ctx):
        return requests.post(f"{ctx['gw']}/api/auth/register", data=b'{"username": ', timeout=10,
                             headers={"Content-Type": "application/json"})

    def json_array(ctx):
        return requests.post(f"{ctx['gw']}/api/auth/login", json=["admin", "password"], timeout=10)

    def unicode_digits(header):
        def run(ctx):
            url = ctx["world"]["upload"]
            headers = {**ctx["alice"].bearer, "Tus-Resumable": "1.0.0", header: "1²"}
            if header == "Upload-Length":
                headers["Upload-Metadata"] = "filename " + base64.b64encode(b"u.mp4").decode()
                return requests.post(f"{ctx['gw']}/api/uploads", headers=headers, timeout=10)
            headers["Content-Type"] = "application/offset+octet-stream"
            return requests.patch(url, headers=headers, data=b"x", timeout=10)
        return run

    def huge_page(path, who):
        def run(ctx):
            headers = ctx[who].bearer
            return requests.get(f"{ctx['gw']}{path}?page=99999999999999999999", headers=headers, timeout=10)
        return run

    return [Attack("64 MiB JSON announced to register (anonymous)", lying_length("/api/auth/register"), (413,)),
            Attack("64 MiB multipart announced to the login form", lying_length(
                "/auth/login", "multipart/form-data; boundary=x"), (413,)),
            Attack("64 MiB announced to the forensics upload without credentials", lying_length(
                "/api/forensics/detect", "multipart/form-data; boundary=x"), (401, 403, 413)),
            Attack("64 MiB announced to a playback session open without credentials", lying_length(
                "/api/stream/sessions"), (401, 413)),
            Attack("8 MiB chunked JSON to the login API", chunked_flood, (413,)),
            Attack("4 MiB multipart to the login form", multipart_login, (413,)),
            Attack("truncated JSON", malformed_json, (400,)),
            Attack("JSON array instead of an object", json_array, (400,)),
            Attack("Unicode digits in Upload-Length", unicode_digits("Upload-Length"), (400,)),
            Attack("Unicode digits in Upload-Offset", unicode_digits("Upload-Offset"), (400,)),
            Attack("page=1e20 on the library", huge_page("/api/library", "alice"), (400,)),
            Attack("page=1e20 on the admin user list", huge_page("/api/admin/users", "admin"), (400,))]


def idor_attacks() -> list[Attack]:
    """Mallory, logged in, reaches for Alice's things by id."""
    def as_mallory(method, path_of, body=None):
        def run(ctx):
            path = path_of(ctx)
            return requests.request(method, f"{ctx['gw']}{path}", json=body, headers=ctx["mallory"].bearer, timeout=10)
        return run

    def mallory_dpop(method, path_of, body=None):
        def run(ctx):
            return ctx["mallory"].client.call(method, path_of(ctx), body, expect=None, timeout=10)
        return run

    def tus(method):
        def run(ctx):
            headers = {**ctx["mallory"].bearer, "Tus-Resumable": "1.0.0"}
            if method == "PATCH":
                headers.update({"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            return requests.request(method, ctx["world"]["upload"], headers=headers, data=b"x" * 10, timeout=10)
        return run

    def alice_device_id(ctx):
        return f"/api/devices/{ctx['alice'].client.device_id}"

    vid = lambda key: lambda ctx: f"/api/videos/{ctx['world'][key]}"  # noqa: E731
    sid = lambda suffix: lambda ctx: f"/api/stream/sessions/{ctx['world']['session'].id}{suffix}"  # noqa: E731
    return [Attack("read another user's private video", as_mallory("GET", vid("private")), (403, 404)),
            Attack("edit another user's video", as_mallory("PATCH", vid("public"), {"title": "pwned"}), (403, 404)),
            Attack("delete another user's video", as_mallory("DELETE", vid("public")), (403, 404)),
            Attack("download another user's original", as_mallory(
                "GET", lambda ctx: f"/api/videos/{ctx['world']['private']}/original"), (403, 404)),
            Attack("watch another user's progress events", as_mallory(
                "GET", lambda ctx: f"/api/videos/{ctx['world']['private']}/events"), (403, 404)),
            Attack("revoke another user's device", as_mallory("DELETE", alice_device_id), (403, 404)),
            Attack("append to another user's upload", tus("PATCH"), (403, 404)),
            Attack("read another user's upload offset", tus("HEAD"), (403, 404)),
            Attack("cancel another user's upload", tus("DELETE"), (403, 404)),
            Attack("heartbeat another user's session", mallory_dpop("POST", sid("/heartbeat"), {"position": 1}),
                   (403, 404)),
            Attack("read another user's session security", mallory_dpop("GET", sid("/security")), (403, 404)),
            Attack("end another user's session", mallory_dpop("DELETE", sid("")), (403, 404)),
            Attack("open a session on a password video without the password", lambda ctx: ctx["mallory"].client.call(
                "POST", "/api/stream/sessions", {"video_id": ctx["world"]["locked"], "client_public_key": _eph_jwk()},
                expect=None, timeout=10), (403,)),
            Attack("open a session on a private video", lambda ctx: ctx["mallory"].client.call(
                "POST", "/api/stream/sessions", {"video_id": ctx["world"]["private"], "client_public_key": _eph_jwk()},
                expect=None, timeout=10), (403, 404))]


def _eph_jwk() -> dict:
    return DeviceKey().jwk


ATTACKS = token_attacks() + body_attacks() + idor_attacks()


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
    assert _profile(ctx, headers=ctx["alice"].bearer).status_code == 200
    r = requests.get(f"{ctx['gw']}/api/library", headers=ctx["alice"].bearer, timeout=5)
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_refused_cleanly(attack, ctx, mdb, s3_count, live_stack):  # noqa: F811
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


def test_the_victims_things_survive_the_table(ctx, mdb):  # noqa: F811
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
    statuses = []
    for n in range(7):
        guesser = register_user(gw, f"guess{n}")
        for _ in range(4):             # under the per-account limit
            statuses.append(requests.post(f"{gw}/api/videos/{vid}/unlock", json={"password": f"guess {n}"},
                                          headers={"Authorization": f"Bearer {guesser['access_token']}"},
                                          timeout=10).status_code)
    assert statuses[0] == 403 and statuses[-1] == 429, statuses
    assert statuses.count(403) <= 20, statuses


def test_grants_do_not_outlive_a_password_change(ctx, live_stack, worker_app, mdb, stores, tmp_path):  # noqa: F811
    gw, alice = ctx["gw"], ctx["alice"]
    clip = make_clip(tmp_path / "g.mp4", seconds=4).read_bytes()
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
