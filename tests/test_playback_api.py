"""Secure playback through the real stack (gateway, auth-svc, streaming-svc, file-svc over
SeaweedFS, MariaDB, the real media worker): sessions, their lifetime and key epochs, and
every attack the issue lists, each refused. The shared fixtures (play, owner, videos) are in
tests/conftest.py; the encrypted media itself (full streams, variants, shared URLs, pacing)
is in test_delivery_v2.py, password videos and the library in test_playback_library.py."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.media import ONE_RUNG
from tests.support.contract_client import ContractClient, ContractError, b64url, ephemeral_key, unwrap_segment_key
from tests.support.dpop import FINGERPRINT, DeviceKey
from tests.support.playback import PLAYBACK_ENV, backdate_session, events_of, get_until, refused_until, viewer
from tests.support.videos import make_ready_video, sql

pytestmark = pytest.mark.heavy

CLIP_SIZE = ONE_RUNG        # the shared ``clip`` fixture: one rung is all these tests need


@pytest.fixture
def client(play):
    return viewer(play["url"])[1]


def refused(url: str) -> requests.Response:
    return get_until(url, lambda r: r.status_code == 410)


# ---- attacks -----------------------------------------------------------------------------------
def test_bearer_token_without_device_binding_is_refused(play, videos, mdb):
    user, _ = viewer(play["url"])
    r = requests.post(f"{play['url']}/api/stream/sessions", json={"video_id": videos["public"]},
                      headers={"Authorization": f"Bearer {user['access_token']}"})
    assert r.status_code == 401 and r.json()["code"] == "dpop_required"
    assert events_of(mdb, user["id"], "dpop_required") == 1


def test_stolen_device_token_with_another_devices_key(play, videos, client):
    thief = DeviceKey()
    url = f"{play['url']}/api/stream/sessions"
    r = requests.post(url, json={"video_id": videos["public"]},
                      headers={"Authorization": f"DPoP {client.device_token}",
                               "DPoP": thief.proof("POST", url, client.device_token)})
    assert r.status_code == 401 and r.json()["code"] == "invalid_dpop_proof"
    # A stolen token as a plain bearer token is refused too.
    r = requests.post(url, json={"video_id": videos["public"]}, headers={"Authorization": f"Bearer {client.device_token}"})
    assert r.status_code == 401


def test_replayed_dpop_proof(play, videos, client, mdb):
    url = f"{play['url']}/api/stream/sessions"
    s = client.open_session(videos["public"])
    hb = f"{play['url']}/api/stream/sessions/{s.id}/heartbeat"
    headers = client.dpop_headers("POST", hb)
    assert requests.post(hb, json={"position": 1}, headers=headers).status_code == 200
    renewed = sql(mdb, "SELECT expires_at, position FROM playback_sessions WHERE id = %s", (s.id,), one=True)
    # The heartbeat records its proof in the renewal's own transaction: a replay renews nothing.
    again = requests.post(hb, json={"position": 7, "qoe": {"watch_ms": 900}}, headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "dpop_replay"
    assert sql(mdb, "SELECT expires_at, position FROM playback_sessions WHERE id = %s", (s.id,), one=True) == renewed
    # A proof for one URL does not open another.
    other = client.dpop_headers("POST", hb)
    assert requests.post(url, json={"video_id": videos["public"]}, headers=other).status_code == 401
    # A session open records its proof with the new session: a replay opens nothing.
    body = {"video_id": videos["public"], "client_public_key": ephemeral_key()[1]}
    headers = client.dpop_headers("POST", url)
    assert requests.post(url, json=body, headers=headers).status_code == 201
    user_id = sql(mdb, "SELECT user_id FROM playback_sessions WHERE id = %s", (s.id,), one=True)["user_id"]
    count = "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s"
    opened = sql(mdb, count, (user_id,), one=True)["n"]
    again = requests.post(url, json=body, headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "dpop_replay", again.text
    assert sql(mdb, count, (user_id,), one=True)["n"] == opened == 2


@pytest.mark.parametrize("how", ["expired", "ended"])
def test_keys_manifest_and_init_refused_after_the_session(client, videos, mdb, how):
    s = client.open_session(videos["public"])
    rep = client.representations(s)[0]
    assert requests.get(rep.init_url).status_code == 200
    if how == "ended":
        client.end(s)
    else:
        backdate_session(mdb, s.id, "expires_at", 1)
    r = refused(rep.init_url)
    assert r.json()["code"] == f"session_{how}"
    # Each gunicorn process has its own session cache: the manifest may reach the other one.
    assert refused(s.manifest_url).json()["code"] == f"session_{how}"
    for call in (lambda: client.heartbeat(s, 3.0), lambda: client.request_keys(s, "video", 3, 4)):
        err = refused_until(call)        # the expiry moved in the database, not with time
        assert (err.status, err.code) == (410, f"session_{how}")


def test_another_users_private_video(client, videos, play):
    with pytest.raises(ContractError) as err:
        client.open_session(videos["private"])
    assert (err.value.status, err.value.code) == (403, "private")
    body = requests.get(f"{play['url']}/api/library?q=Owner only diary",
                        headers={"Authorization": f"Bearer {client.access_token}"}).json()
    assert body["items"] == []


@pytest.mark.parametrize("path", ["/objects/media/x/video/480p/init.mp4", "/objects?prefix=media/",
                                  "/streamvault/media/", "/streamvault?list-type=2"])
def test_file_svc_and_s3_not_reachable_through_gateway(play, videos, path):
    r = requests.get(play["url"] + path.replace("/x/", f"/{videos['public']}/"))
    assert r.status_code in (401, 404)
    assert b"ftyp" not in r.content and b"ListBucketResult" not in r.content


def test_failed_and_deleted_videos_serve_nothing(client, videos, mdb, worker_app, stores, owner, clip):
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="soon gone")
    s = client.open_session(vid)
    rep = client.representations(s)[0]
    sql(mdb, "UPDATE videos SET status = 'failed' WHERE id = %s", (vid,))
    assert refused(rep.init_url).json()["code"] == "video_unavailable"
    err = refused_until(lambda: client.request_keys(s, "video", 0, 4))
    assert (err.status, err.code) == (410, "video_unavailable")
    with pytest.raises(ContractError) as err:
        client.open_session(vid)
    assert err.value.status == 410
    sql(mdb, "UPDATE videos SET status = 'ready' WHERE id = %s", (vid,))
    s2 = client.open_session(vid)
    rep2 = client.representations(s2)[0]
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))
    for url in (rep2.init_url, s2.manifest_url):
        get_until(url, lambda r: r.status_code in (404, 410))
    err = refused_until(lambda: client.request_keys(s2, "video", 0, 4))   # its ciphertext gets no more keys
    assert err.status in (404, 410)


def test_concurrent_stream_limit(play, videos, mdb):
    user, c = viewer(play["url"], "binge")
    sessions = [c.open_session(videos["public"]) for _ in range(3)]
    with pytest.raises(ContractError) as err:
        c.open_session(videos["public"])
    assert err.value.status == 429 and err.value.code == "stream_limit"
    assert "limit is 3" in err.value.body["error"]
    assert err.value.body["error"].startswith("You're watching on 3 other devices — stop one, or wait")
    assert events_of(mdb, user["id"], "stream_limit") == 1
    c.end(sessions[0])
    c.open_session(videos["public"])     # a slot was freed


def test_stream_limit_holds_against_opens_at_the_same_instant(play, videos, mdb):
    """An account shared by many people (what the limit is for) opening sessions at once from
    10 devices: never more than the limit of 3 open, each refusal a clean 429. (Each open's
    count of live sessions once read a snapshot taken before it waited for the account's lock,
    so opens racing the same account all saw the sessions of before the race.)"""
    user, first = viewer(play["url"], "shared")
    clients = [first] + [ContractClient(play["url"]).login(user["username"], user["password"]) for _ in range(9)]
    start = threading.Barrier(len(clients))

    def open_one(c: ContractClient):
        start.wait()
        try:
            return c.open_session(videos["public"])
        except ContractError as exc:
            return exc

    with ThreadPoolExecutor(len(clients)) as pool:
        outcomes = list(pool.map(open_one, clients))
    opened = [o for o in outcomes if not isinstance(o, ContractError)]
    refusals = [(o.status, o.code) for o in outcomes if isinstance(o, ContractError)]
    live = sql(mdb, "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s AND ended_at IS NULL",
               (user["id"],), one=True)["n"]
    assert len(opened) == 3 and live == 3, (len(opened), live, refusals)
    assert refusals == [(429, "stream_limit")] * 7


@pytest.mark.parametrize("jwk", [
    {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
    {"kty": "EC", "crv": "P-384", "x": "A" * 64, "y": "A" * 64},
    {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    "not a jwk",
    None,
])
def test_bad_client_public_keys(client, videos, jwk):
    r = client.call("POST", "/api/stream/sessions", {"video_id": videos["public"], "client_public_key": jwk},
                    expect=None)
    assert r.status_code == 400 and r.json()["code"] == "invalid_public_key"


@pytest.mark.parametrize("junk", ["!!", "  ", "\n\n"])
def test_client_key_with_characters_outside_base64url_is_refused(client, videos, junk):
    """A real key's x with a character base64url does not have: refused, not decoded with the
    character dropped (the standard library's lenient decoder would accept it)."""
    n = ec.derive_private_key(20261206, ec.SECP256R1()).public_key().public_numbers()     # a fixed real key
    x, y = b64url(n.x.to_bytes(32, "big")), b64url(n.y.to_bytes(32, "big"))
    jwk = {"kty": "EC", "crv": "P-256", "x": x[:20] + junk + x[20:], "y": y}
    r = client.call("POST", "/api/stream/sessions", {"video_id": videos["public"], "client_public_key": jwk},
                    expect=None)
    assert r.status_code == 400 and r.json()["code"] == "invalid_public_key", r.text


def test_point_not_on_curve_is_refused(client, videos):
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url((1).to_bytes(32, "big")), "y": b64url((1).to_bytes(32, "big"))}
    r = client.call("POST", "/api/stream/sessions", {"video_id": videos["public"], "client_public_key": jwk},
                    expect=None)
    assert r.status_code == 400


# ---- lifetime ----------------------------------------------------------------------------------
def test_heartbeat_rotates_the_key_epoch_with_a_grace_window(client, videos, play, mdb):
    s = client.open_session(videos["public"])
    first = client.heartbeat(s, 1.0)
    assert first["key_epoch"] == 0 and "wrapped_cek" not in first
    backdate_session(mdb, s.id, "epoch_started_at", int(PLAYBACK_ENV["KEY_ROTATION_SECONDS"]) + 0.5)
    rotated = client.heartbeat(s, 5.0)
    assert rotated["key_epoch"] == 1 and rotated["wrapped_cek"] and s.ceks[1] != s.ceks[0]
    new = get_keys_until(client, s, 1, lambda body: body["key_epoch"] == 1)
    # A request still naming the previous epoch (its CEK was in flight) gets it, in the grace window.
    old = client.request_keys(s, "video", 2, 1, key_epoch=0).json()
    assert old["key_epoch"] == 0
    key = unwrap_segment_key(s.ceks[1], s.id, "video", new["keys"][0])
    assert unwrap_segment_key(s.ceks[0], s.id, "video", old["keys"][0]) == key
    with pytest.raises(InvalidTag):
        unwrap_segment_key(s.ceks[0], s.id, "video", new["keys"][0])
    # Past the grace window the previous epoch is not used any more; a client with no CEK
    # for the epoch it is answered in gets it with a heartbeat (fetch_keys does that).
    backdate_session(mdb, s.id, "epoch_started_at", int(PLAYBACK_ENV["KEY_GRACE_SECONDS"]) + 1)
    late = get_keys_until(client, s, 0, lambda body: body["key_epoch"] == 1)
    assert unwrap_segment_key(s.ceks[1], s.id, "video", late["keys"][0]) == key
    del s.ceks[1]
    s.key_epoch = 0
    assert client.fetch_keys(s, "video", 2, 1) == {2: key} and s.key_epoch >= 1


def get_keys_until(client, s, key_epoch: int, accept, timeout_s: float = 10) -> dict:
    """Key index 2 asked for naming ``key_epoch``, until ``accept`` takes the answer
    (streaming-svc caches a session for SESSION_CACHE_SECONDS)."""
    deadline = time.monotonic() + timeout_s
    while not accept(body := client.request_keys(s, "video", 2, 1, key_epoch=key_epoch).json()):
        assert time.monotonic() < deadline, f"timed out: last answer {body}"
        time.sleep(0.1)
    return body


def test_session_is_bound_to_its_device(client, videos, play, mdb):
    s = client.open_session(videos["public"])
    other = ContractClient(play["url"])
    other.access_token = client.access_token          # same account, another browser/device
    other.register_device()
    with pytest.raises(ContractError) as err:
        other.heartbeat(s, 1.0)
    assert (err.value.status, err.value.code) == (403, "wrong_device")


def test_heartbeat_positions_alone_count_no_view(client, videos, mdb):
    """A view needs 10 s of credited playing time from the player's QoE report (the rules:
    test_views_qoe.py); a position is no proof of watching."""
    views = lambda: sql(mdb, "SELECT views FROM videos WHERE id = %s", (videos["public"],), one=True)["views"]  # noqa: E731
    before = views()
    s = client.open_session(videos["public"])
    for pos in (1.0, 3.0, 5.0):
        assert client.heartbeat(s, pos)["views"] == before
    assert views() == before


def test_security_endpoint(client, videos):
    s = client.open_session(videos["public"])
    info = client.security(s)
    assert info["state"] == "live" and info["device"]["this_device"] is True
    assert info["device"]["id"] == client.device_id and info["key_epoch"] == 0
    assert info["protections"]["key_rotation_seconds"] == int(PLAYBACK_ENV["KEY_ROTATION_SECONDS"])
    assert info["protections"]["forensic_watermark"]["codeword_length"] > 0
    # What the player's plain-language panel shows: the device as recorded, the watermark id.
    d = info["device"]
    assert d["name"] and d["screen"] == FINGERPRINT["screen"] and d["timezone"] == FINGERPRINT["timezone"]
    assert d["first_seen_at"].endswith("Z") and info["watermark_id"] == s.id
    assert info["protections"]["key_grace_seconds"] == int(PLAYBACK_ENV["KEY_GRACE_SECONDS"])
