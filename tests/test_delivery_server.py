"""Delivery v2, the serving side, through the real gateway: the /media/ ciphertext cache
(HIT, Range, ETag/304, headers, refusals never cached), the per-session manifests and init
segments, first keys with the session, unconverted and deleted videos. The key endpoint is
tests/test_delivery_keys.py; the end-to-end decrypt of whole streams tests/test_delivery_v2.py."""
from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest
import requests

from svcommon import codeword
from svcommon.media_crypto import AUDIO, VIDEO, decrypt_segment
from svcommon.mp4boxes import walk_bytes
from tests.support.contract_client import ContractError
from tests.support.playback import viewer
from tests.support.videos import sql
from tests.support.delivery import segment_count, session_urls, unwrap, variant


def test_manifests_list_the_sessions_variants_only(gw, delivery_video, codeword_secret, mdb):
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
            mine = variant(codeword_secret, s.id, track, i)
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


def test_init_segment_is_per_session_with_its_tag(gw, delivery_video, codeword_secret):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s1, s2 = c.open_session(vid), c.open_session(vid)
    bodies = []
    for s in (s1, s2):
        init, _ = session_urls(gw, s)[AUDIO]
        r = requests.get(gw + init)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        assert "X-Cache-Status" not in r.headers and "X-Key-Epoch" not in r.headers
        tags = codeword.find_tags(codeword_secret, r.content)
        assert [(t.session_id, t.valid) for t in tags] == [(s.id, True)]
        bodies.append(r.content)
    assert bodies[0] != bodies[1] and bodies[0][:-codeword.TAG_BOX_SIZE] == bodies[1][:-codeword.TAG_BOX_SIZE]
    c.end(s1)
    assert requests.get(gw + session_urls(gw, s2)[AUDIO][0].replace(s2.id, s1.id)).status_code == 404


def test_first_keys_come_with_the_session_and_open_its_segments(gw, delivery_video, codeword_secret, mdb):
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
            assert key == vkeys.segment_key(track, variant(codeword_secret, s.id, track, e["index"]), e["index"])
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


def test_a_growing_ladder_is_read_again_only_every_few_seconds(delivery_video, owner, mdb, service_config,
                                                               monkeypatch):
    """The metadata of a video whose higher rungs are still encoding (or whose higher-rung chunk
    died) is kept briefly, not fetched and parsed again for every key, manifest and init
    request; a rung that joins shows once that short time has passed. (In-process streaming
    app, the real database.)"""
    from streaming_svc import create_app, live
    from streaming_svc.extensions import db as streaming_db
    monkeypatch.setattr(live, "GROWING_LADDER_SECONDS", 0.5, raising=False)
    vid, _ = delivery_video
    row = sql(mdb, "SELECT segment_count, duration, metadata FROM video_media WHERE video_id = %s", (vid,), one=True)
    meta = json.loads(row["metadata"])
    growing = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Growing ladder', '', 'private', 'ready')", (growing, owner["id"]))
    sql(mdb, "INSERT INTO video_media (video_id, segment_count, duration, metadata) VALUES (%s, %s, %s, %s)",
        (growing, row["segment_count"], row["duration"], json.dumps({**meta, "ladder_complete": False})))
    app = create_app({**service_config, "LOG_LEVEL": "WARNING"})

    def questions(conn) -> int:
        return int(sql(conn, "SHOW SESSION STATUS LIKE 'Questions'", one=True)["Value"])

    try:
        with app.app_context(), streaming_db.standalone() as conn:
            first = live.media_of(conn, growing)
            before = questions(conn)
            for _ in range(3):          # a player's key, manifest and init requests
                assert live.media_of(conn, growing) is first
            assert questions(conn) == before + 1 and not first.ladder_complete     # only the SHOW itself
            sql(mdb, "UPDATE video_media SET metadata = %s WHERE video_id = %s", (row["metadata"], growing))
            deadline = time.monotonic() + 10
            while True:                 # the grown ladder shows soon
                conn.rollback()         # as at the end of a request: the next read sees new rows
                if live.media_of(conn, growing).ladder_complete:
                    break
                assert time.monotonic() < deadline, "a grown ladder never showed"
                time.sleep(0.1)
    finally:
        sql(mdb, "DELETE FROM videos WHERE id = %s", (growing,))
