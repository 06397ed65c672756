"""Delivery v2, the serving side, through the real gateway: the /media/ ciphertext cache
(HIT, Range, ETag/304, headers, refusals never cached), the per-session manifests and init
segments, and the key endpoint (auth, epochs, clipping, pacing). The end-to-end decrypt of
whole streams by the contract client is tests/test_delivery_v2.py."""
from __future__ import annotations

import hashlib
import re
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests

from svcommon import codeword
from svcommon.media_crypto import AUDIO, VIDEO, decrypt_segment, unwrap_segment_key
from svcommon.mp4boxes import walk_bytes
from tests.support.contract_client import ContractClient, ContractError, b64url_decode
from tests.support.sealed_media import media_row
from tests.support.playback import backdate_session, events_of, viewer
from tests.support.videos import sql

MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}


@pytest.fixture(scope="module")
def gw(play):
    return play["url"]


@pytest.fixture(scope="module")
def secret(play):
    return play["env"]["WATERMARK_SECRET"]


def variant(secret: str, sid: str, track: str, i: int) -> str:
    return "-" if track == AUDIO else codeword.variant(secret, sid, i)


def unwrap(s, entry: dict, track: str, epoch: int = 0) -> bytes:
    return unwrap_segment_key(s.ceks[epoch], s.id, track, int(entry["index"]), b64url_decode(entry["nonce"]),
                              b64url_decode(entry["ciphertext"]))


def keys(c: ContractClient, s, track: str, start: int, count: int, **extra) -> requests.Response:
    return c.call("POST", f"/api/stream/sessions/{s.id}/keys", {"track": track, "from": start, "count": count,
                                                                **extra}, expect=None)


def segment_count(conn, vid: str) -> tuple[int, int]:
    meta = media_row(conn, vid)["metadata"]
    return meta["segment_count"], len(meta["audio"]["segment_sizes"]) if meta.get("audio") else 0


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def session_urls(gw: str, s) -> dict[str, tuple[str, list[str]]]:
    """rendition -> (init URL, segment URLs) from the session's DASH manifest."""
    r = requests.get(s.manifest_url)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    out = {}
    for rep in ET.fromstring(r.text).iterfind(".//d:Representation", MPD):
        sl = rep.find("d:SegmentList", MPD)
        out[rep.get("id")] = (sl.find("d:Initialization", MPD).get("sourceURL"),
                              [u.get("media") for u in sl.iterfind("d:SegmentURL", MPD)])
    return out


def test_manifests_list_the_sessions_variants_only(gw, delivery_video, secret, mdb):
    vid, vkeys = delivery_video
    n, n_audio = segment_count(mdb, vid)
    _, c = viewer(gw)
    s = c.open_session(vid)
    urls = session_urls(gw, s)
    text = requests.get(s.manifest_url).text
    assert AUDIO in urls and len(urls) >= 2
    for rendition, (init, segs) in urls.items():
        assert init == f"/api/stream/m/{s.id}/{s.manifest_url.split('/')[-2]}/{rendition}/init.mp4"
        track = AUDIO if rendition == AUDIO else VIDEO
        assert len(segs) == (n_audio if track == AUDIO else n)
        for i, url in enumerate(segs):
            mine = variant(secret, s.id, track, i)
            assert url == f"/media/{vid}/{rendition}/{vkeys.file_name(rendition, mine, i)}"
            if track == VIDEO:      # the other variant's name never appears
                assert vkeys.file_name(rendition, "b" if mine == "a" else "a", i) not in text
    # HLS names exactly the same URLs.
    base = s.manifest_url.rsplit("/", 1)[0]
    master = requests.get(base + "/master.m3u8")
    assert master.status_code == 200 and master.headers["Cache-Control"] == "no-store"
    for rendition, (init, segs) in urls.items():
        media = requests.get(f"{base}/{rendition}/index.m3u8")
        assert media.status_code == 200 and media.headers["Cache-Control"] == "no-store"
        assert f'#EXT-X-MAP:URI="{init}"' in media.text
        assert [ln for ln in media.text.splitlines() if ln.startswith("/media/")] == segs


def test_init_segment_is_per_session_with_its_tag(gw, delivery_video, secret):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s1, s2 = c.open_session(vid), c.open_session(vid)
    bodies = []
    for s in (s1, s2):
        init, _ = session_urls(gw, s)[AUDIO]
        r = requests.get(gw + init)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        assert "X-Cache-Status" not in r.headers and "X-Key-Epoch" not in r.headers
        tags = codeword.find_tags(secret, r.content)
        assert [(t.session_id, t.valid) for t in tags] == [(s.id, True)]
        bodies.append(r.content)
    assert bodies[0] != bodies[1] and bodies[0][:-codeword.TAG_BOX_SIZE] == bodies[1][:-codeword.TAG_BOX_SIZE]
    c.end(s1)
    assert requests.get(gw + session_urls(gw, s2)[AUDIO][0].replace(s2.id, s1.id)).status_code == 404


def test_first_keys_come_with_the_session_and_open_its_segments(gw, delivery_video, secret, mdb):
    vid, vkeys = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    first = s.raw["keys"]
    reopened = c.call("POST", "/api/stream/sessions", {"video_id": vid, "client_public_key": s.raw["server_public_key"]})
    assert reopened.headers["Cache-Control"] == "no-store"          # carries wrapped keys
    assert first["key_epoch"] == 0
    urls = session_urls(gw, s)
    video_rendition = next(r for r in urls if r != AUDIO)
    for track, rendition in ((VIDEO, video_rendition), (AUDIO, AUDIO)):
        assert [e["index"] for e in first[track]] == [0, 1, 2]
        for e in first[track]:
            key = unwrap(s, e, track)
            assert key == vkeys.segment_key(track, variant(secret, s.id, track, e["index"]), e["index"])
            body = requests.get(gw + urls[rendition][1][e["index"]]).content
            boxes = list(walk_bytes(decrypt_segment(key, vid, rendition, e["index"], body)))
            assert boxes[0].kind in (b"styp", b"moof")
    row = sql(mdb, "SELECT video_key_seconds, audio_key_seconds FROM playback_sessions WHERE id = %s", (s.id,),
              one=True)
    assert 5.0 < row["video_key_seconds"] < 7.0 and 5.0 < row["audio_key_seconds"] < 7.0


def test_media_is_served_from_the_gateway_cache(gw, delivery_video, play):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    urls = session_urls(gw, s)
    rendition = next(r for r in urls if r != AUDIO)
    url = gw + urls[rendition][1][3]              # indices 3 and 4: no other test fetches them
    first = requests.get(url, cookies={"sv_access": "x"})
    assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
    body = first.content
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    assert first.headers["ETag"] == etag
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["Content-Type"] == "application/octet-stream" and "Set-Cookie" not in first.headers
    again = requests.get(url)
    assert again.headers["X-Cache-Status"] == "HIT" and again.content == body and again.headers["ETag"] == etag
    part = requests.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.headers["X-Cache-Status"] == "HIT"
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(body)}" and part.content == body[10:100]
    same = requests.get(url, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.headers["X-Cache-Status"] == "HIT" and not same.content
    head = requests.head(url)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(body)
    assert requests.get(url, headers={"Range": f"bytes={len(body) + 10}-"}).status_code == 416
    # A first request with a Range fills the cache with the whole object.
    url2 = gw + urls[rendition][1][4]
    part = requests.get(url2, headers={"Range": "bytes=0-15"})
    assert part.status_code == 206 and len(part.content) == 16
    whole = requests.get(url2)
    assert whole.headers["X-Cache-Status"] == "HIT" and whole.content[:16] == part.content
    assert requests.post(url2).status_code == 405


def test_origin_answers_range_etag_and_416_itself(gw, delivery_video, play):
    """streaming-svc directly (what a cache miss or a CDN without range support sees)."""
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    path = session_urls(gw, s)[AUDIO][1][0]
    origin = play["stack"].url("streaming")
    full = requests.get(origin + path)
    assert full.status_code == 200 and full.headers["Accept-Ranges"] == "bytes"
    part = requests.get(origin + path, headers={"Range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == full.content[5:10]
    assert requests.get(origin + path, headers={"If-None-Match": full.headers["ETag"]}).status_code == 304
    bad = requests.get(origin + path, headers={"Range": f"bytes={len(full.content)}-"})
    assert bad.status_code == 416 and bad.json()["code"] == "range_not_satisfiable"
    assert bad.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", [
    "x", "{vid}", "{vid}/720p", "{vid}/720p/00001.m4s", "{vid}/720p/00001-{hex}.mp4",
    "{vid}/720p/0001-{hex}.m4s", "{vid}/720p/00001-{HEX}.m4s", "{VID}/720p/00001-{hex}.m4s",
    "{vid}/720P/00001-{hex}.m4s", "{vid}/averyveryverylongname/00001-{hex}.m4s",
    "{vid}/720p/00001-{hex}.m4s/x", "{vid}/720p/00001-{hex}.m4s", "{other}/audio/00000-{hex}.m4s",
    "{vid}/..%2f..%2fapi/00001-{hex}.m4s", "{vid}/720p/\u0660\u0660\u0660\u0660\u0661-{hex}.m4s",
    "{vid}/720p/\uff10\uff10\uff10\uff10\uff11-{hex}.m4s", "{vid}/720p/0000\u00b2-{hex}.m4s",
])
def test_bad_media_urls_are_refused_and_never_cached(gw, delivery_video, path):
    vid, _ = delivery_video
    url = gw + "/media/" + path.format(vid=vid, VID=vid.upper(), hex="ab" * 16, HEX="AB" * 16, other="0" * 32)
    for attempt in ("MISS", "MISS"):
        r = requests.get(url)
        assert r.status_code in (400, 404), (url, r.status_code)
        assert r.json()["code"] in ("not_found", "bad_request")
        assert r.headers.get("X-Cache-Status", attempt) == attempt
        assert r.headers["Cache-Control"] == "no-store" or r.status_code == 400


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
    wait_for(lambda: keys(c, s, "audio", 0, 1).status_code == 403)   # session facts cached ≤ SESSION_CACHE_SECONDS
    assert keys(c, s, "audio", 0, 1).json()["code"] == "account_disabled"


def test_keys_are_clipped_at_the_end_and_416_past_it(gw, delivery_video, secret, mdb):
    vid, vkeys = delivery_video
    n, n_audio = segment_count(mdb, vid)
    _, c = viewer(gw)
    s = c.open_session(vid)
    r = keys(c, s, "video", n - 2, 16)
    assert r.status_code == 200 and [e["index"] for e in r.json()["keys"]] == [n - 2, n - 1]
    for e in r.json()["keys"]:
        assert unwrap(s, e, VIDEO) == vkeys.segment_key(VIDEO, variant(secret, s.id, VIDEO, e["index"]), e["index"])
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
    burst = float(play["env"].get("KEY_BURST_SECONDS", 60))
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
    # After Retry-After seconds of session time the same request fits.
    sql(mdb, "UPDATE playback_sessions SET started_at = started_at - INTERVAL %s SECOND WHERE id = %s", (retry, s.id))
    assert keys(c, s, "video", 0, 16).status_code == 200
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": play["env"]["ADMIN_PASSWORD"]})
    listed = requests.get(f"{gw}/api/admin/security/events?kind=key_pace_exceeded",
                          headers={"Authorization": f"Bearer {admin.json()['access_token']}"})
    assert any(s.id in e["detail"] for e in listed.json()["items"])


def test_security_page_states_the_protections(gw, delivery_video):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    p = c.security(s)["protections"]
    assert "encrypted once" in p["content_encryption"]
    assert p["key_release_pacing"]["pace_factor"] == 1.5
    assert p["key_release_pacing"]["released_seconds"]["video"] > 0


def test_unconverted_video_answers_media_converting(gw, delivery_video, owner, mdb):
    """A video processed before delivery v2 (plaintext segments, delivery_version 1) cannot
    be played until it is converted: 503 + Retry-After, no session left behind."""
    vid, _ = delivery_video
    old = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Before v2', '', 'public', 'ready')", (old, owner["id"]))
    sql(mdb, "INSERT INTO video_media (video_id, segment_count, duration, metadata) "
             "SELECT %s, segment_count, duration, metadata FROM video_media WHERE video_id = %s", (old, vid))
    try:
        user, c = viewer(gw)
        with pytest.raises(ContractError) as refused:
            c.open_session(old)
        assert refused.value.status == 503 and refused.value.code == "media_converting"
        assert sql(mdb, "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s",
                   (user["id"],), one=True)["n"] == 0
    finally:
        # It has no objects: left behind, the converter (test_media_conversion) would fail on it.
        sql(mdb, "DELETE FROM videos WHERE id = %s", (old,))


def test_media_of_a_video_being_deleted_is_gone(gw, delivery_video, mdb):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    url = gw + session_urls(gw, s)[AUDIO][1][3]          # not fetched by any other test
    sql(mdb, "UPDATE videos SET status = 'deleting' WHERE id = %s", (vid,))
    try:
        r = requests.get(url)
        assert r.status_code == 404 and r.headers["Cache-Control"] == "no-store"
        assert requests.get(url).headers["X-Cache-Status"] == "MISS"
    finally:
        sql(mdb, "UPDATE videos SET status = 'ready' WHERE id = %s", (vid,))
    assert requests.get(url).status_code == 200
