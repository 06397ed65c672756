"""Every bad input is a clear 4xx JSON error and leaves nothing in S3 or MariaDB."""
from __future__ import annotations

import io
import subprocess

import pytest

import ingest_helpers as h

MiB = 1024 * 1024


def _nothing_left(env, user, vid=None):
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    if vid:
        assert h.video_objects(env, vid) == []


@pytest.mark.parametrize("name,reason", [("text.mp4", "not a video"), ("truncated.mp4", "not a video")])
def test_tus_not_a_video(tus, user, env, media, name, reason):
    data = (media / name).read_bytes()
    r = tus.create(len(data), filename=name)
    assert r.status_code == 201, r.get_data(as_text=True)
    vid = r.headers["X-Video-Id"]
    r = tus.patch(r.headers["Location"], 0, data)
    assert r.status_code == 422 and r.is_json and r.json["code"] == "not_a_video" and reason in r.json["error"]
    _nothing_left(env, user, vid)


@pytest.mark.parametrize("name", ["text.mp4", "truncated.mp4", "empty.mp4"])
def test_post_not_a_video(client, user, env, media, name):
    r = client.post("/api/videos", headers=user["headers"], data={
        "title": "bad", "file": (io.BytesIO((media / name).read_bytes()), name)})
    assert r.status_code in (400, 422) and r.is_json
    assert r.json["code"] in ("not_a_video", "empty_file")
    _nothing_left(env, user)


def test_zero_bytes_and_over_limit(make_app, user, env):
    client = make_app(UPLOAD_MAX_BYTES=10 * MiB).test_client()
    t = {**h.TUS, **user["headers"]}
    r = client.post("/api/uploads", headers={**t, "Upload-Length": "0"})
    assert r.status_code == 400 and r.json["code"] == "empty_file"
    r = client.post("/api/uploads", headers={**t, "Upload-Length": str(10 * MiB + 1)})
    assert r.status_code == 413 and r.json["code"] == "too_large"
    # A hand-made body (the test client would spool a big form to a temp file it never closes).
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n\r\n"
            + h.MP4_HEAD + b"\0" * (10 * MiB + 100) + b"\r\n--BOUNDARY--\r\n")
    r = client.post("/api/videos", headers=user["headers"], data=body,
                    content_type="multipart/form-data; boundary=BOUNDARY")
    assert r.status_code == 413 and r.json["code"] == "too_large"
    _nothing_left(env, user)


def test_quota(make_app, user, env, media):
    data = (media / "good.mp4").read_bytes()
    client = make_app(UPLOAD_QUOTA_BYTES=len(data) + 1000).test_client()
    tus_headers = {**h.TUS, **user["headers"]}
    r = client.post("/api/uploads", headers={**tus_headers, "Upload-Length": str(len(data))})
    assert r.status_code == 201
    r = client.post("/api/uploads", headers={**tus_headers, "Upload-Length": "2000"})
    assert r.status_code == 413 and r.json["code"] == "quota_exceeded"
    assert h.user_footprint(env, user["id"])["videos"] == 1


@pytest.mark.parametrize("headers,status,code", [
    ({"Upload-Length": "abc"}, 400, "invalid_header"),
    ({"Upload-Length": "-5"}, 400, "invalid_header"),
    ({}, 400, "invalid_header"),
    ({"Upload-Length": "100", "Tus-Resumable": "0.2.2"}, 412, "tus_version"),
    ({"Upload-Length": "100", "Upload-Metadata": "filename !!notbase64"}, 400, "invalid_metadata"),
    ({"Upload-Length": "100", "Upload-Metadata": h.tus_metadata(visibility="secret")}, 400, "invalid_input"),
    ({"Upload-Length": "100", "Upload-Metadata": h.tus_metadata(visibility="password")}, 400, "invalid_input"),
    ({"Upload-Length": "100", "Upload-Metadata": h.tus_metadata(title="x" * 300)}, 400, "invalid_input"),
])
def test_bad_creation(client, user, env, headers, status, code):
    r = client.post("/api/uploads", headers={**h.TUS, **user["headers"], **headers})
    assert r.status_code == status and r.is_json and r.json["code"] == code
    _nothing_left(env, user)


def test_wrong_offsets_and_unknown_uploads(tus, user, env):
    r = tus.create(5000, filename="a.mp4")
    loc = r.headers["Location"]
    assert tus.patch(loc, 10, b"x" * 10).status_code == 409                         # ahead of the server
    assert tus.patch(loc, 0, b"x" * 6000).status_code == 400                        # beyond Upload-Length
    r = tus.client.patch(loc, data=b"x", headers={**h.TUS, **user["headers"], "Upload-Offset": "0",
                                                  "Content-Type": "application/octet-stream"})
    assert r.status_code == 415
    r = tus.patch("/api/uploads/" + "0" * 32, 0, b"x")                              # PATCH without creation
    assert r.status_code == 404 and r.is_json
    assert tus.patch("/api/uploads/../../etc", 0, b"x").status_code == 404
    assert tus.client.delete(loc, headers={**h.TUS, **user["headers"]}).status_code == 204
    _nothing_left(env, user)


def test_missing_auth_and_other_users(tus, client, user, other_user, env):
    r = client.post("/api/uploads", headers={**h.TUS, "Upload-Length": "100"})
    assert r.status_code == 401 and r.is_json
    loc = tus.create(100, filename="a.mp4").headers["Location"]
    r = client.patch(loc, data=b"x", headers={**h.TUS, **other_user["headers"], "Upload-Offset": "0",
                                              "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 404
    assert client.head(loc, headers={**h.TUS, **other_user["headers"]}).status_code == 404
    assert client.delete(loc, headers={**h.TUS, **other_user["headers"]}).status_code == 404
    assert client.get("/api/videos/mine").status_code == 401
    client.delete(loc, headers={**h.TUS, **user["headers"]})


def test_cookie_auth_needs_csrf(client, user):
    client.set_cookie("sv_access", user["token"])
    client.set_cookie("sv_csrf", "tok123")
    r = client.post("/api/uploads", headers={**h.TUS, "Upload-Length": "100"})
    assert r.status_code == 403 and r.json["code"] == "csrf_failed"
    r = client.post("/api/uploads", headers={**h.TUS, "Upload-Length": "100", "X-CSRF-Token": "tok123"})
    assert r.status_code == 201
    assert client.delete(r.headers["Location"], headers={**h.TUS, "X-CSRF-Token": "tok123"}).status_code == 204


def test_uploads_require_role(make_app, user, env):
    client = make_app(UPLOADS_REQUIRE_ROLE=True).test_client()
    r = client.post("/api/uploads", headers={**h.TUS, **user["headers"], "Upload-Length": "100"})
    assert r.status_code == 403 and "uploader" in r.json["error"]


# A ZIP archive's first bytes, then filler: what a wrong pick in a file dialog sends.
ARCHIVE_HEAD = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 32


def test_tus_refuses_a_non_video_at_its_first_chunk(tus, user, env):
    """A file that is no container we accept is refused by the PATCH that brings its first
    4 KiB, not after its last byte (a 20 MiB archive here; a 10 GB one went up whole before
    the probe at the end refused it): the upload and its video are gone at once."""
    size = 20 * MiB
    r = tus.create(size, filename="holiday.zip")
    assert r.status_code == 201
    vid = r.headers["X-Video-Id"]
    r = tus.patch(r.headers["Location"], 0, ARCHIVE_HEAD + b"\0" * (MiB - len(ARCHIVE_HEAD)))
    assert r.status_code == 422 and r.json["code"] == "not_a_video", r.get_data(as_text=True)
    assert "not a recognised video file" in r.json["error"] and "Nothing was kept" in r.json["error"]
    _nothing_left(env, user, vid)


def test_tus_first_chunk_shorter_than_the_check_is_judged_whole(tus, user, env, media, tmp_path):
    """A client whose first chunk is smaller than the check's 4 KiB is not judged by it: an
    MPEG-TS is recognised by three packets' sync bytes (564 bytes), so its first 300 bytes
    alone would be refused. The file is judged at its end, as before (a video: queued)."""
    ts = tmp_path / "good.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(media / "good.mp4"), "-c", "copy", str(ts)],
                   check=True)
    data = ts.read_bytes()
    r = tus.create(len(data), filename="good.ts")
    url, vid = r.headers["Location"], r.headers["X-Video-Id"]
    assert tus.patch(url, 0, data[:300]).status_code == 204
    r = tus.patch(url, 300, data[300:])
    assert r.status_code == 204, r.get_data(as_text=True)
    assert h.user_footprint(env, user["id"])["videos"] == 1 and h.video_objects(env, vid) != []


def test_post_refuses_a_non_video_before_storing_anything(make_app, file_proxy, user, env):
    """The POST path reads the file part's first 4 KiB before it makes the video's row or
    asks file-svc for anything: a non-video leaves no trace anywhere, however large."""
    client = make_app(FILE_SVC_URL=file_proxy.url).test_client()
    # A hand-made body (the test client would spool a big form to a temp file it never closes).
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\narchive\r\n"
            b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"holiday.zip\"\r\n\r\n"
            + ARCHIVE_HEAD + b"\0" * (8 * MiB) + b"\r\n--BOUNDARY--\r\n")
    r = client.post("/api/videos", headers=user["headers"], data=body,
                    content_type="multipart/form-data; boundary=BOUNDARY")
    assert r.status_code == 422 and r.json["code"] == "not_a_video", r.get_data(as_text=True)
    assert file_proxy.seen == [] and file_proxy.s3.seen == []
    _nothing_left(env, user)
