"""Secure playback through the real stack (gateway, auth-svc, streaming-svc, file-svc over
SeaweedFS, MariaDB, the real media worker): the contract client, and every attack the
issue lists, each refused. Fixtures here are reused by test_playback_browser.py."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import requests
from cryptography.exceptions import InvalidTag

from svcommon import codeword
from svcommon.media_keys import init_key, segment_key
from svcommon.passwords import hash_password
from tests.support.contract_client import ContractClient, ContractError, decrypt_segment
from tests.support.dpop import DeviceKey
from tests.support.media import make_clip
from tests.support.videos import make_ready_video, mdb, register_user, restart_service, sql, stores, worker_app  # noqa: F401

pytestmark = pytest.mark.heavy

# Short timings so rotation, expiry and grace can be observed within a test.
PLAYBACK_ENV = {"KEY_ROTATION_SECONDS": "4", "KEY_GRACE_SECONDS": "30", "HEARTBEAT_SECONDS": "2",
                "SESSION_TTL_SECONDS": "8", "SESSION_CACHE_SECONDS": "0.5", "MAX_CONCURRENT_STREAMS": "3",
                "UNLOCK_MAX_FAILURES": "3"}
VIDEO_PASSWORD = "open sesame 42"


@pytest.fixture(scope="module")
def play(live_stack):
    """The live stack with streaming-svc restarted on short playback timings (restored after)."""
    restart_service(live_stack, "streaming", {**live_stack["env"], **PLAYBACK_ENV})
    yield live_stack
    restart_service(live_stack, "streaming", live_stack["env"])


@pytest.fixture(scope="module")
def owner(play):
    return register_user(play["url"], "owner")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("play") / "clip.mp4", seconds=10).read_bytes()


@pytest.fixture(scope="module")
def videos(play, worker_app, mdb, stores, owner, clip):  # noqa: F811
    """Two processed videos (public, password) and a ready-looking private one."""
    out = {
        "public": make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Public sunrise clip"),
        "password": make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Secret sunset clip",
                                     visibility="password", password_hash=hash_password(VIDEO_PASSWORD)),
    }
    private = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Owner only diary', '', 'private', 'ready')", (private, owner["id"]))
    out["private"] = private
    return out


@pytest.fixture(scope="module")
def meta(mdb, videos):
    return json.loads(sql(mdb, "SELECT metadata FROM video_media WHERE video_id = %s", (videos["public"],),
                          one=True)["metadata"])


def viewer(gw: str, prefix: str = "viewer") -> tuple[dict, ContractClient]:
    user = register_user(gw, prefix)
    return user, ContractClient(gw).login(user["username"], user["password"])


@pytest.fixture
def client(play):
    return viewer(play["url"])[1]


def events_of(conn, user_id: str, kind: str) -> int:
    return sql(conn, "SELECT COUNT(*) AS n FROM security_events WHERE user_id = %s AND kind = %s",
               (user_id, kind), one=True)["n"]


# ---- the contract ------------------------------------------------------------------------------
def test_contract_client_decrypts_every_segment_into_a_playable_file(client, videos, meta, stores, tmp_path,
                                                                      play):
    s = client.open_session(videos["public"])
    rendition = meta["renditions"][0]["name"]
    out = client.download(s, rendition, tmp_path / "leak.mp4", audio=True)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(out)],
        check=True, capture_output=True, text=True).stdout)
    v = probe["streams"][0]
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 854, 480)
    assert int(v["nb_read_frames"]) == round(meta["duration"] * meta["fps_float"])
    audio = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json",
                                       str(out.with_suffix(".audio.mp4"))], check=True, capture_output=True,
                                      text=True).stdout)
    assert audio["streams"][0]["codec_name"] == "aac"
    # Segment i is variant A or B exactly as the session's codeword says; the init carries the tag.
    data = out.read_bytes()
    secret = play["env"]["WATERMARK_SECRET"]
    fs = stores["streaming"]
    pos = len(fs.get_bytes(init_key(videos["public"], rendition))) + codeword.TAG_BOX_SIZE
    for i, size_pair in enumerate(zip(*meta["renditions"][0]["segments"].values())):
        variant = codeword.variant(secret, s.id, i)
        expected = fs.get_bytes(segment_key(videos["public"], rendition, variant, i))
        assert data[pos:pos + len(expected)] == expected, f"segment {i} is not variant {variant}"
        pos += len(expected)
    assert pos == len(data)
    tags = codeword.find_tags(secret, data)
    assert [(t.session_id, t.valid) for t in tags] == [(s.id, True)]
    assert codeword.find_tags("another secret entirely, 32+ chars long", data)[0].valid is False


def test_manifest_and_urls_reveal_nothing_about_variants(client, videos, meta, play):
    secret = play["env"]["WATERMARK_SECRET"]
    a, b = client.open_session(videos["public"]), client.open_session(videos["public"])
    ra, rb = client.representations(a), client.representations(b)
    text = requests.get(a.manifest_url).text
    assert "/a/" not in text and "/b/" not in text and "variant" not in text
    assert ra[0].segment_urls[0] != rb[0].segment_urls[0]          # per-session URLs
    assert {r.id for r in ra} == {r["name"] for r in meta["renditions"]} | {"audio"}
    differ = [i for i in range(meta["segment_count"])
              if codeword.codeword_bit(secret, a.id, i) != codeword.codeword_bit(secret, b.id, i)]
    if differ:   # same index, different sessions, different variant → different plaintext
        i = differ[0]
        name = ra[0].id
        assert client.fetch(a, ra[0].segment_urls[i], name, i) != client.fetch(b, rb[0].segment_urls[i], name, i)


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


def test_replayed_dpop_proof(play, videos, client):
    url = f"{play['url']}/api/stream/sessions"
    s = client.open_session(videos["public"])
    hb = f"{play['url']}/api/stream/sessions/{s.id}/heartbeat"
    headers = client.dpop_headers("POST", hb)
    assert requests.post(hb, json={"position": 1}, headers=headers).status_code == 200
    again = requests.post(hb, json={"position": 1}, headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "dpop_replay"
    # A proof for one URL does not open another.
    other = client.dpop_headers("POST", hb)
    assert requests.post(url, json={"video_id": videos["public"]}, headers=other).status_code == 401


def test_session_a_segment_does_not_decrypt_under_session_b(client, videos):
    a, b = client.open_session(videos["public"]), client.open_session(videos["public"])
    rep_a = client.representations(a)[0]
    body = requests.get(rep_a.segment_urls[1]).content
    with pytest.raises(InvalidTag):
        decrypt_segment(b.ceks[0], b.id, rep_a.id, 1, body)
    with pytest.raises(InvalidTag):                      # nor as B's segment with A's key
        decrypt_segment(a.ceks[0], b.id, rep_a.id, 1, body)
    with pytest.raises(InvalidTag):                      # nor at another position of A
        decrypt_segment(a.ceks[0], a.id, rep_a.id, 2, body)
    assert decrypt_segment(a.ceks[0], a.id, rep_a.id, 1, body)
    # B's id with A's URL token is not a valid URL at all.
    forged = rep_a.segment_urls[1].replace(a.id, b.id)
    assert requests.get(forged).status_code == 404


@pytest.mark.parametrize("how", ["expired", "ended"])
def test_segments_refused_after_the_session(client, videos, how):
    s = client.open_session(videos["public"])
    rep = client.representations(s)[0]
    assert requests.get(rep.segment_urls[0]).status_code == 200
    if how == "ended":
        client.end(s)
    else:
        time.sleep(int(PLAYBACK_ENV["SESSION_TTL_SECONDS"]) + 1)
    time.sleep(float(PLAYBACK_ENV["SESSION_CACHE_SECONDS"]) + 0.2)
    r = requests.get(rep.segment_urls[1])
    assert r.status_code == 410 and r.json()["code"] == f"session_{how}"
    assert requests.get(s.manifest_url).status_code == 410
    with pytest.raises(ContractError) as err:
        client.heartbeat(s, 3.0)
    assert err.value.status == 410


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


def test_failed_and_deleted_videos_serve_nothing(client, videos, mdb, worker_app, stores, owner, clip):  # noqa: F811
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="soon gone")
    s = client.open_session(vid)
    rep = client.representations(s)[0]
    sql(mdb, "UPDATE videos SET status = 'failed' WHERE id = %s", (vid,))
    time.sleep(float(PLAYBACK_ENV["SESSION_CACHE_SECONDS"]) + 0.2)
    r = requests.get(rep.segment_urls[0])
    assert r.status_code == 410 and r.json()["code"] == "video_unavailable"
    with pytest.raises(ContractError) as err:
        client.open_session(vid)
    assert err.value.status == 410
    sql(mdb, "UPDATE videos SET status = 'ready' WHERE id = %s", (vid,))
    s2 = client.open_session(vid)
    rep2 = client.representations(s2)[0]
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))
    time.sleep(float(PLAYBACK_ENV["SESSION_CACHE_SECONDS"]) + 0.2)
    for url in (rep2.segment_urls[0], rep2.init_url, s2.manifest_url):
        assert requests.get(url).status_code in (404, 410)


def test_concurrent_stream_limit(play, videos, mdb):
    user, c = viewer(play["url"], "binge")
    sessions = [c.open_session(videos["public"]) for _ in range(3)]
    with pytest.raises(ContractError) as err:
        c.open_session(videos["public"])
    assert err.value.status == 429 and err.value.code == "stream_limit"
    assert "limit is 3" in err.value.body["error"]
    assert events_of(mdb, user["id"], "stream_limit") == 1
    c.end(sessions[0])
    c.open_session(videos["public"])     # a slot was freed


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


def test_point_not_on_curve_is_refused(client, videos):
    from tests.support.contract_client import b64url
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url((1).to_bytes(32, "big")), "y": b64url((1).to_bytes(32, "big"))}
    r = client.call("POST", "/api/stream/sessions", {"video_id": videos["public"], "client_public_key": jwk},
                    expect=None)
    assert r.status_code == 400


# ---- lifetime ----------------------------------------------------------------------------------
def test_heartbeat_rotates_the_key_epoch_with_a_grace_window(client, videos, play):
    s = client.open_session(videos["public"])
    rep = client.representations(s)[0]
    first = client.heartbeat(s, 1.0)
    assert first["key_epoch"] == 0 and "wrapped_cek" not in first
    time.sleep(int(PLAYBACK_ENV["KEY_ROTATION_SECONDS"]) + 0.5)
    rotated = client.heartbeat(s, 5.0)
    assert rotated["key_epoch"] == 1 and rotated["wrapped_cek"] and s.ceks[1] != s.ceks[0]
    time.sleep(float(PLAYBACK_ENV["SESSION_CACHE_SECONDS"]) + 0.2)
    new = requests.get(rep.segment_urls[2])
    assert new.headers["X-Key-Epoch"] == "1"
    # A request still naming the previous epoch (its key was in flight) gets it, in the grace window.
    old = requests.get(rep.segment_urls[2], headers={"X-Key-Epoch": "0"})
    assert old.headers["X-Key-Epoch"] == "0"
    assert decrypt_segment(s.ceks[0], s.id, rep.id, 2, old.content) == \
        decrypt_segment(s.ceks[1], s.id, rep.id, 2, new.content)
    with pytest.raises(InvalidTag):
        decrypt_segment(s.ceks[0], s.id, rep.id, 2, new.content)


def test_session_is_bound_to_its_device(client, videos, play, mdb):
    s = client.open_session(videos["public"])
    other = ContractClient(play["url"])
    other.access_token = client.access_token          # same account, another browser/device
    other.register_device()
    with pytest.raises(ContractError) as err:
        other.heartbeat(s, 1.0)
    assert (err.value.status, err.value.code) == (403, "wrong_device")


def test_views_are_counted_once_per_session(client, videos, mdb):
    views = lambda: sql(mdb, "SELECT views FROM videos WHERE id = %s", (videos["public"],), one=True)["views"]  # noqa: E731
    before = views()
    s = client.open_session(videos["public"])
    assert views() == before
    for pos in (1.0, 3.0, 5.0):
        client.heartbeat(s, pos)
    assert views() == before + 1


def test_security_endpoint(client, videos):
    s = client.open_session(videos["public"])
    info = client.security(s)
    assert info["state"] == "live" and info["device"]["this_device"] is True
    assert info["device"]["id"] == client.device_id and info["key_epoch"] == 0
    assert info["protections"]["key_rotation_seconds"] == int(PLAYBACK_ENV["KEY_ROTATION_SECONDS"])
    assert info["protections"]["forensic_watermark"]["codeword_length"] > 0


# ---- password videos and the library -----------------------------------------------------------
def test_password_video_needs_the_password(play, videos, mdb):
    user, c = viewer(play["url"], "guest")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    unlock = f"{play['url']}/api/videos/{videos['password']}/unlock"
    with pytest.raises(ContractError) as err:
        c.open_session(videos["password"])
    assert (err.value.status, err.value.code) == (403, "locked")
    lib = requests.get(f"{play['url']}/api/library?q=Secret sunset", headers=auth).json()
    assert [i["locked"] for i in lib["items"]] == [True]
    r = requests.post(unlock, json={"password": "wrong"}, headers=auth)
    assert r.status_code == 403 and r.json()["code"] == "wrong_password"
    assert requests.post(unlock, json={"password": VIDEO_PASSWORD}, headers=auth).status_code == 204
    assert c.open_session(videos["password"]).id
    lib = requests.get(f"{play['url']}/api/library?q=Secret sunset", headers=auth).json()
    assert [i["locked"] for i in lib["items"]] == [False]
    grant = sql(mdb, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), expires_at) AS s FROM video_access_grants "
                     "WHERE user_id = %s AND video_id = %s", (user["id"], videos["password"]), one=True)
    assert 3500 <= grant["s"] <= 3600


def test_wrong_video_passwords_are_throttled(play, videos, mdb):
    user, c = viewer(play["url"], "guesser")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    unlock = f"{play['url']}/api/videos/{videos['password']}/unlock"
    codes = [requests.post(unlock, json={"password": f"guess {i}"}, headers=auth).status_code for i in range(3)]
    assert codes == [403, 403, 403]
    r = requests.post(unlock, json={"password": VIDEO_PASSWORD}, headers=auth)   # even the right one, now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert events_of(mdb, user["id"], "unlock_throttled") == 1


def test_library_search_pagination_and_visibility(play, videos, owner):
    _, c = viewer(play["url"], "browser")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    body = requests.get(f"{play['url']}/api/library?q=clip", headers=auth).json()
    titles = {i["title"] for i in body["items"]}
    assert {"Public sunrise clip", "Secret sunset clip"} <= titles and "Owner only diary" not in titles
    item = next(i for i in body["items"] if i["id"] == videos["public"])
    assert item["duration"] == pytest.approx(10, abs=0.5) and item["thumbnail_url"]
    thumb = requests.get(play["url"] + item["thumbnail_url"], headers=auth)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    own = requests.get(f"{play['url']}/api/library?q=Owner only diary",
                       headers={"Authorization": f"Bearer {owner['access_token']}"}).json()
    assert [i["id"] for i in own["items"]] == [videos["private"]]
    assert requests.get(f"{play['url']}/api/library?page=999", headers=auth).json()["items"] == []
    assert requests.get(f"{play['url']}/api/library?page=x", headers=auth).status_code == 400
    assert requests.get(f"{play['url']}/api/library").status_code == 401


@pytest.mark.parametrize("path", ["/", "/watch/abc"])
def test_pages_send_anonymous_visitors_to_login(play, path):
    r = requests.get(play["url"] + path, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/auth/login?redirect=")
