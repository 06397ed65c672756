"""Delivery v2 through the gateway, the key endpoint: device, owner and liveness checks, clipping
and 416, key epochs within the grace window, pacing (429 + a security event), the security page."""
from __future__ import annotations

import re

import pytest
import requests

from svcommon.media_crypto import AUDIO, VIDEO, unwrap_segment_key
from tests.support.media import ONE_RUNG
from tests.support.contract_client import ContractClient, b64url_decode
from tests.support.playback import backdate_session, events_of, viewer
from tests.support.videos import sql
from tests.support.delivery import keys, segment_count, unwrap, variant, wait_for

CLIP_SIZE = ONE_RUNG        # the shared ``clip`` fixture: one rung is all these tests need


def test_key_endpoint_checks_device_owner_and_liveness(gw, delivery_video):
    vid, _ = delivery_video
    user, c = viewer(gw)
    s = c.open_session(vid)
    url = f"{gw}/api/stream/sessions/{s.id}/keys"
    body = {"track": "video", "from": 0, "count": 1}
    assert requests.post(url, json=body).status_code == 401
    r = requests.post(url, json=body, headers={"Authorization": f"Bearer {c.access_token}"})
    assert r.status_code == 401 and r.json()["code"] == "dpop_required"
    other_device = ContractClient(gw).login(user["username"], user["password"])
    r = keys(other_device, s, "video", 0, 1)
    assert r.status_code == 403 and r.json()["code"] == "wrong_device"
    _, stranger = viewer(gw)
    assert keys(stranger, s, "video", 0, 1).status_code == 404
    for bad in ({"track": "subtitles", "from": 0, "count": 1}, {"track": "video", "from": -1, "count": 1},
                {"track": "video", "from": 0, "count": 0}, {"track": "video", "from": 0, "count": 17},
                {"track": "video", "from": "0", "count": 1}, {"track": "video", "from": True, "count": 1},
                {"track": "video", "count": 1}, {"track": "video", "from": 0, "count": 1, "key_epoch": -1}):
        r = c.call("POST", f"/api/stream/sessions/{s.id}/keys", bad, expect=None)
        assert r.status_code == 400 and r.json()["code"] == "invalid_input", bad
    ok = keys(c, s, "video", 0, 1)
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r"app;dur=\d+\.\d{3}(, [a-z]+;dur=\d+\.\d{3})+", ok.headers["Server-Timing"])
    c.end(s)
    r = keys(c, s, "video", 0, 1)
    assert r.status_code == 410 and r.json()["code"] == "session_ended"


def test_keys_refused_to_a_disabled_account(gw, delivery_video, mdb):
    vid, _ = delivery_video
    user, c = viewer(gw)
    s = c.open_session(vid)
    assert keys(c, s, "audio", 0, 1).status_code == 200
    sql(mdb, "UPDATE users SET disabled = 1 WHERE id = %s", (user["id"],))
    # At once: the key release reads the session's access facts in its own round trip (no cache).
    r = keys(c, s, "audio", 0, 1)
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"


def test_a_key_request_charges_only_its_own_live_playback_session(gw, delivery_video, mdb):
    """The release charges the budget in the same statement that checks whose session it is: a
    stranger, another device of the owner, a download-only session, an ended one are refused
    and leave its budget as it was (none can drain a viewer's keys)."""
    vid, _ = delivery_video
    user, c = viewer(gw)
    s = c.open_session(vid)

    def used(sid: str) -> float:
        return float(sql(mdb, "SELECT video_key_seconds AS v FROM playback_sessions WHERE id = %s", (sid,), one=True)["v"])
    before = used(s.id)
    _, stranger = viewer(gw)
    other_device = ContractClient(gw).login(user["username"], user["password"])
    assert keys(stranger, s, "video", 0, 16).status_code == 404
    assert keys(other_device, s, "video", 0, 16).status_code == 403
    assert used(s.id) == before
    ok = keys(c, s, "video", 0, 2)
    assert ok.status_code == 200 and used(s.id) > before       # the control: the owner's device is charged
    download = c.open_session(vid, purpose="download")
    r = keys(c, download, "video", 0, 2)
    assert r.status_code == 403 and r.json()["code"] == "download_session" and used(download.id) == 0
    charged = used(s.id)
    c.end(s)
    assert keys(c, s, "video", 2, 2).status_code == 410 and used(s.id) == charged


def test_keys_are_clipped_at_the_end_and_416_past_it(gw, delivery_video, codeword_secret, mdb):
    vid, vkeys = delivery_video
    n, n_audio = segment_count(mdb, vid)
    _, c = viewer(gw)
    s = c.open_session(vid)
    r = keys(c, s, "video", n - 2, 16)
    assert r.status_code == 200 and [e["index"] for e in r.json()["keys"]] == [n - 2, n - 1]
    for e in r.json()["keys"]:
        assert unwrap(s, e, VIDEO) == vkeys.segment_key(VIDEO, variant(codeword_secret, s.id, VIDEO, e["index"]), e["index"])
    for track, count in ((VIDEO, n), (AUDIO, n_audio)):
        r = keys(c, s, track, count, 1)
        assert r.status_code == 416 and r.json()["code"] == "range_not_satisfiable"
    # Wrapped for this session only: another session's CEK/AAD opens nothing.
    other = c.open_session(vid)
    e = keys(c, s, "audio", 0, 1).json()["keys"][0]
    with pytest.raises(Exception):
        unwrap_segment_key(other.ceks[0], other.id, AUDIO, 0, b64url_decode(e["nonce"]), b64url_decode(e["ciphertext"]))


def test_key_epoch_follows_the_request_within_grace(gw, delivery_video, mdb, play):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    backdate_session(mdb, s.id, "epoch_started_at", int(play["env"].get("KEY_ROTATION_SECONDS", 4)) + 1)
    assert c.heartbeat(s, 1.0)["key_epoch"] == 1

    def epoch_for(**extra) -> int:
        body = keys(c, s, "audio", 0, 1, **extra).json()
        unwrap(s, body["keys"][0], AUDIO, body["key_epoch"])      # wrapped under that epoch's CEK
        return body["key_epoch"]

    # Another process may hold the session from before the rotation for SESSION_CACHE_SECONDS.
    wait_for(lambda: epoch_for() == 1)
    assert epoch_for(key_epoch=1) == 1 and epoch_for(key_epoch=9) == 1 and epoch_for() == 1
    assert epoch_for(key_epoch=0) == 0                           # the previous one, within its grace
    sql(mdb, "UPDATE playback_sessions SET epoch_started_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id = %s",
        (s.id,))
    wait_for(lambda: epoch_for(key_epoch=0) == 1)                # past the grace: the current one


def test_pacing_refuses_a_ripping_loop(gw, delivery_video, mdb, play):
    vid, _ = delivery_video
    n, _ = segment_count(mdb, vid)
    user, c = viewer(gw)
    s = c.open_session(vid)
    burst = float(play["env"].get("KEY_BURST_SECONDS", 120))
    for attempt in range(int(burst) // 2 + 2):
        r = keys(c, s, "video", 0, 16)
        if r.status_code != 200:
            break
    assert r.status_code == 429 and r.json()["code"] == "key_pace_exceeded", r.text
    assert r.headers["Cache-Control"] == "no-store"
    retry = int(r.headers["Retry-After"])
    assert retry >= 1
    assert events_of(mdb, user["id"], "key_pace_exceeded") == 1
    row = sql(mdb, "SELECT video_key_seconds AS used, TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) "
                   "/ 1e6 AS elapsed FROM playback_sessions WHERE id = %s", (s.id,), one=True)
    assert burst - 2 * n < row["used"] <= burst + 1.5 * float(row["elapsed"])
    assert keys(c, s, "audio", 0, 1).status_code == 200         # each track has its own budget
    refused_with = c.dpop_headers("POST", f"{gw}/api/stream/sessions/{s.id}/keys")
    r = c.call("POST", f"/api/stream/sessions/{s.id}/keys", {"track": "video", "from": 0, "count": 16},
               headers=refused_with, expect=None)
    assert r.status_code == 429
    for _ in range(5):                       # the loop goes on, ignoring Retry-After: all refused…
        assert keys(c, s, "video", 0, 16).status_code == 429
    # …and not an event each: one a minute per track and process (this stack's streaming-svc runs two)
    assert events_of(mdb, user["id"], "key_pace_exceeded") <= 2
    # After Retry-After seconds of session time the same request fits (with a fresh proof: the
    # refused request used its proof up).
    sql(mdb, "UPDATE playback_sessions SET started_at = started_at - INTERVAL %s SECOND WHERE id = %s", (retry, s.id))
    r = c.call("POST", f"/api/stream/sessions/{s.id}/keys", {"track": "video", "from": 0, "count": 16},
               headers=refused_with, expect=None)
    assert r.status_code == 401 and r.json()["code"] == "dpop_replay"
    assert keys(c, s, "video", 0, 16).status_code == 200
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": play["env"]["ADMIN_PASSWORD"]})
    listed = requests.get(f"{gw}/api/admin/security/events?kind=key_pace_exceeded",
                          headers={"Authorization": f"Bearer {admin.json()['access_token']}"})
    assert any(s.id in e["detail"] for e in listed.json()["items"])


def test_a_key_request_proof_is_single_use_in_every_process(gw, delivery_video, mdb, service_config):
    """The proof is recorded with the pace charge in one statement (migration 012); a replay is
    refused by either gunicorn process behind the gateway and by another app in another process
    (this one, its own connection pool), and charges nothing."""
    from streaming_svc import create_app
    vid, _ = delivery_video
    user, c = viewer(gw)
    s = c.open_session(vid)
    path, body = f"/api/stream/sessions/{s.id}/keys", {"track": "audio", "from": 0, "count": 2}
    headers = c.dpop_headers("POST", gw + path)
    assert c.call("POST", path, body, headers=headers, expect=None).status_code == 200
    used = sql(mdb, "SELECT audio_key_seconds AS used FROM playback_sessions WHERE id = %s", (s.id,), one=True)
    for _ in range(4):
        r = c.call("POST", path, body, headers=headers, expect=None)
        assert r.status_code == 401 and r.json()["code"] == "dpop_replay", r.text
    app = create_app({**service_config, "LOG_LEVEL": "WARNING"})
    r = app.test_client().post(path, base_url=gw, json=body, headers=headers)
    assert r.status_code == 401 and r.get_json()["code"] == "dpop_replay"
    assert sql(mdb, "SELECT audio_key_seconds AS used FROM playback_sessions WHERE id = %s", (s.id,), one=True) == used
    assert events_of(mdb, user["id"], "dpop_replay") == 5
    assert keys(c, s, "audio", 0, 2).status_code == 200           # a fresh proof works


def test_a_refused_key_request_still_uses_up_its_proof(gw, delivery_video):
    """Refusals before the pace charge (bad input, unknown session) record the proof after the
    view, so a captured proof of a refused request cannot be replayed with a good body."""
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    path = f"/api/stream/sessions/{s.id}/keys"
    for bad_body in ({"track": "subtitles", "from": 0, "count": 1}, {"track": "audio", "from": 0, "count": 99}):
        headers = c.dpop_headers("POST", gw + path)
        assert c.call("POST", path, bad_body, headers=headers, expect=None).status_code == 400
        r = c.call("POST", path, {"track": "audio", "from": 0, "count": 1}, headers=headers, expect=None)
        assert r.status_code == 401 and r.json()["code"] == "dpop_replay", r.text


def test_a_replay_refused_for_another_reason_is_recorded_with_its_user(gw, delivery_video, mdb):
    """docs/api.md: a replayed proof is recorded whatever the answer, with the user; the answer is
    401 dpop_replay unless the request is refused for another reason first (here its body)."""
    vid, _ = delivery_video
    user, c = viewer(gw)
    s = c.open_session(vid)
    path, bad = f"/api/stream/sessions/{s.id}/keys", {"track": "subtitles", "from": 0, "count": 1}
    headers = c.dpop_headers("POST", gw + path)
    for _ in range(2):
        assert c.call("POST", path, bad, headers=headers, expect=None).status_code == 400
    assert events_of(mdb, user["id"], "dpop_replay") == 1


def test_security_page_states_the_protections(gw, delivery_video):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    p = c.security(s)["protections"]
    assert "encrypted once" in p["content_encryption"]
    assert p["key_release_pacing"]["pace_factor"] == 1.5
    assert p["key_release_pacing"]["released_seconds"]["video"] > 0
