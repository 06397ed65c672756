"""Hostile uploads through upload-svc against the real stack: playlists and manifests
(SSRF, other users' originals, local files) are refused before ffmpeg sees them and no
request reaches the loopback listener; limits answer 422 naming the limit; a busy probe
answers 503 + Retry-After; names with bidi controls or a CR get the right answer; each
refusal leaves nothing behind."""
from __future__ import annotations

import io

import pytest

import ingest_helpers as h
from upload_svc import probe as upload_probe


def _nothing_left(env, user, vid=None):
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    if vid:
        assert h.video_objects(env, vid) == []


@pytest.mark.parametrize("name, reason", [
    ("hls_http", "HLS playlist"), ("hls_file", "HLS playlist"), ("mpd_absolute", "DASH manifest"),
    ("mpd_relative", "DASH manifest"), ("concat", "concat list"), ("gif", "animated GIFs"),
    ("truncated", "truncated"), ("still_over_sound", "the sound goes on 10.0 s after the last picture"),
])
def test_tus_refuses_what_is_no_video(tus, user, env, corpus, listener, name, reason):
    data = corpus[name].read_bytes()
    r = tus.create(len(data), filename=corpus[name].name)
    vid = r.headers["X-Video-Id"]
    r = tus.patch(r.headers["Location"], 0, data)
    assert listener.hits == []          # first: no request left ffmpeg (with or without our token)
    assert r.status_code == 422 and r.json["code"] == "not_a_video", r.get_data(as_text=True)
    assert reason in r.json["error"]
    _nothing_left(env, user, vid)


@pytest.mark.parametrize("name, limit", [("huge", "MEDIA_MAX_WIDTH"), ("gap", "MEDIA_MAX_GAP_SECONDS"),
                                         ("tiny", "MEDIA_MIN_PIXELS")])
def test_limits_answer_422_naming_the_limit(tus, user, env, corpus, name, limit):
    # tus, not a form: the test client spools a form over 500 KB to a file it never closes.
    data = corpus[name].read_bytes()
    _, r = tus.upload(data, filename=corpus[name].name)
    assert r.status_code == 422 and r.json["code"] == "media_limit_exceeded", r.get_data(as_text=True)
    assert limit in r.json["error"]
    _nothing_left(env, user)


def test_rotated_video_listed_as_displayed(client, user, env, corpus):
    r = client.post("/api/videos", headers=user["headers"], data={
        "title": "portrait", "file": (io.BytesIO(corpus["rotated"].read_bytes()), "rotated.mp4")})
    assert r.status_code == 201, r.get_data(as_text=True)
    row = h.db_rows(env, "SELECT width, height, duration FROM videos WHERE id = %s", (r.json["video"]["id"],))[0]
    assert (row["width"], row["height"]) == (240, 320)
    assert float(row["duration"]) == pytest.approx(2.0, abs=0.05)


def test_busy_probe_answers_503_and_keeps_nothing(make_app, user, env, corpus):
    client = make_app(PROBE_CONCURRENCY=1, PROBE_WAIT_SECONDS=0).test_client()
    slot = upload_probe._slot(1)
    assert slot.acquire(timeout=5)          # another upload holds the only probe slot
    try:
        r = client.post("/api/videos", headers=user["headers"], data={
            "title": "wait", "file": (io.BytesIO(corpus["rotated"].read_bytes()), "r.mp4")})
    finally:
        slot.release()
    assert r.status_code == 503 and r.json["code"] == "probe_busy" and r.headers["Retry-After"]
    _nothing_left(env, user)


def test_bidi_controls_refused_in_titles_stripped_in_names(client, user, env, corpus):
    data = corpus["rotated"].read_bytes()
    r = client.post("/api/videos", headers=user["headers"], data={
        "title": "invoice\u202ekcp.mp4", "file": (io.BytesIO(data), "a.mp4")})
    assert r.status_code == 400 and r.json["code"] == "invalid_input" and "invisible" in r.json["error"]
    r = client.post("/api/videos", headers=user["headers"], data={
        "description": "zero\u200bwidth", "file": (io.BytesIO(data), "a.mp4")})
    assert r.status_code == 400 and r.json["code"] == "invalid_input"
    _nothing_left(env, user)
    r = client.post("/api/videos", headers=user["headers"], data={
        "file": (io.BytesIO(data), "invoice\u202ekcp.\u2066mp4")})
    assert r.status_code == 201, r.get_data(as_text=True)
    row = h.db_rows(env, "SELECT title, original_filename FROM videos WHERE id = %s", (r.json["video"]["id"],))[0]
    assert row["original_filename"] == "invoicekcp.mp4" and "\u202e" not in row["title"]


def test_cr_in_multipart_filename_is_named(client, user, env):
    body = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\rb.mp4\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n" + b"\0" * (200 * 1024) + b"\r\n--B--\r\n")
    r = client.post("/api/videos", headers=user["headers"], data=body, content_type="multipart/form-data; boundary=B")
    assert r.status_code == 400 and r.json["code"] == "invalid_filename" and "line break" in r.json["error"]
    _nothing_left(env, user)
