"""Video API: streaming POST, list, read/edit/delete (owner/admin only), original download
with Range, and live status over SSE."""
from __future__ import annotations

import io
import json
import threading
import uuid

import pytest

import ingest_helpers as h


@pytest.fixture
def posted(client, user, media):
    """A public video of the user's. Deleted afterwards: the suite shares one library, and a
    test that marks it ready without media would leave a card whose thumbnail 404s."""
    r = client.post("/api/videos", headers=user["headers"], data={
        "title": "<img src=x onerror=alert(1)>'; DROP TABLE videos; --", "description": "line1\nline2",
        "visibility": "public", "file": (io.BytesIO((media / "good.mp4").read_bytes()), "vidéo ü.mp4")})
    assert r.status_code == 201, r.get_data(as_text=True)
    yield r.json["video"]
    gone = client.delete(f"/api/videos/{r.json['video']['id']}", headers=user["headers"])
    assert gone.status_code in (204, 404), gone.get_data(as_text=True)


def test_post_streams_and_queues(posted, env, media):
    v = posted
    assert v["status"] == "queued" and v["title"].startswith("<img") and v["description"] == "line1\nline2"
    assert v["original_filename"] == "vidéo ü.mp4" and v["size"] == (media / "good.mp4").stat().st_size
    assert h.s3_keys(env, f"originals/{v['id']}/") == [f"originals/{v['id']}/original"]
    assert h.db_rows(env, "SELECT title FROM videos WHERE id = %s", (v["id"],))[0]["title"] == v["title"]


def test_mine_lists_only_own(client, user, other_user, posted):
    ids = [v["id"] for v in client.get("/api/videos/mine", headers=user["headers"]).json["items"]]
    assert posted["id"] in ids
    assert client.get("/api/videos/mine", headers=other_user["headers"]).json["items"] == []


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_other_users_get_404(client, other_user, posted, method):
    r = client.open(f"/api/videos/{posted['id']}", method=method, headers=other_user["headers"],
                    json={"title": "mine now"} if method == "PATCH" else None)
    assert r.status_code == 404 and r.json["code"] == "not_found"
    assert client.get(f"/api/videos/{posted['id']}/original", headers=other_user["headers"]).status_code == 404


def test_edit_and_password(client, user, posted, env):
    url = f"/api/videos/{posted['id']}"
    r = client.patch(url, headers=user["headers"], json={"visibility": "password"})
    assert r.status_code == 400 and "password" in r.json["error"]
    r = client.patch(url, headers=user["headers"], json={"visibility": "password", "password": "s3cret-pw",
                                                          "title": "New title"})
    assert r.status_code == 200 and r.json["video"]["has_password"] and r.json["video"]["title"] == "New title"
    stored = h.db_rows(env, "SELECT password_hash FROM videos WHERE id = %s", (posted["id"],))[0]["password_hash"]
    assert stored.startswith("scrypt$") and "s3cret-pw" not in stored
    r = client.patch(url, headers=user["headers"], json={"visibility": "public"})
    assert r.json["video"]["has_password"] is False
    assert client.patch(url, headers=user["headers"], json={"owner_id": "x"}).status_code == 400
    assert client.patch(url, headers=user["headers"], json={"visibility": "everyone"}).status_code == 400


def test_download_original_with_range(client, user, posted, media):
    data = (media / "good.mp4").read_bytes()
    r = client.get(f"/api/videos/{posted['id']}/original", headers=user["headers"])
    assert r.status_code == 200 and r.data == data
    assert "filename*=UTF-8''vid%C3%A9o%20%C3%BC.mp4" in r.headers["Content-Disposition"]
    r = client.get(f"/api/videos/{posted['id']}/original", headers={**user["headers"], "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.data == data[10:20]


def test_delete_removes_objects_and_rows(client, user, posted, env):
    vid = posted["id"]
    # something derived, as the media workers will write it
    h.s3_client(env).put_object(Bucket=env["S3_BUCKET"], Key=f"media/{vid}/720p/init.mp4", Body=b"x")
    assert client.delete(f"/api/videos/{vid}", headers=user["headers"]).status_code == 204
    assert h.video_objects(env, vid) == []
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    assert client.get(f"/api/videos/{vid}", headers=user["headers"]).status_code == 404


def test_delete_with_storage_down_stays_deleting_and_can_be_retried(make_app, client, user, posted, env):
    """The delete commits its 'deleting' mark before it calls file-svc (no row lock held
    across those calls): storage down → 503, the video stays 'deleting' (gone for viewers
    and the worker), and the same DELETE finishes once storage is back."""
    vid = posted["id"]
    broken = make_app(FILE_SVC_URL="http://127.0.0.1:9").test_client()    # nothing listens on port 9
    r = broken.delete(f"/api/videos/{vid}", headers=user["headers"])
    assert r.status_code == 503 and r.json["code"] == "storage_unavailable"
    assert h.db_rows(env, "SELECT status FROM videos WHERE id = %s", (vid,)) == [{"status": "deleting"}]
    assert client.delete(f"/api/videos/{vid}", headers=user["headers"]).status_code == 204
    assert h.video_objects(env, vid) == []
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}


def test_events_stream_until_final(make_app, user, posted, env):
    client = make_app(SSE_POLL_SECONDS=0.1, SSE_MAX_SECONDS=10).test_client()
    with h.db_conn(env) as conn:  # what the media workers will do
        conn.cursor().execute("UPDATE videos SET status = 'ready', status_message = '' WHERE id = %s", (posted["id"],))
        conn.commit()
    r = client.get(f"/api/videos/{posted['id']}/events", headers=user["headers"])
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    assert r.headers["X-Accel-Buffering"] == "no"
    events = [json.loads(line[5:]) for line in r.get_data(as_text=True).splitlines() if line.startswith("data:")]
    assert events[-1] == {"status": "ready", "progress": 100.0, "message": "ready to watch", "encoding": False,
                          "encode_progress": 100.0, "thumbnail_url": None}


def test_events_follow_a_growing_ladder_until_complete(make_app, user, posted, env):
    """A ready video whose higher rungs are still encoded keeps its stream: stage, percent of
    the whole ladder and the thumbnail come live, and the stream ends when the worker clears
    the stage (what watermark-svc's chunk jobs write)."""
    client = make_app(SSE_POLL_SECONDS=0.1, SSE_MAX_SECONDS=20).test_client()
    vid = posted["id"]
    with h.db_conn(env) as conn:
        cur = conn.cursor()
        cur.execute("UPDATE videos SET status = 'ready', status_message = 'playable at 360p · 480p 0 %', "
                    "thumbnail_key = %s WHERE id = %s", (f"media/{vid}/thumb.jpg", vid))
        # The planning job (posted's) done, one rung done and one still queued.
        cur.execute("UPDATE jobs SET status = 'done', progress = 100 WHERE subject = %s", (vid,))
        cur.execute("INSERT INTO jobs (id, kind, subject, payload, status, progress) VALUES "
                    "(%s, 'video.chunk', %s, '{}', 'done', 100), (%s, 'video.chunk', %s, '{}', 'queued', 0)",
                    (uuid.uuid4().hex, vid, uuid.uuid4().hex, vid))
        conn.commit()

    def finish():
        with h.db_conn(env) as conn:
            cur = conn.cursor()
            cur.execute("UPDATE jobs SET status = 'done', progress = 100 WHERE subject = %s", (vid,))
            cur.execute("UPDATE videos SET status_message = '' WHERE id = %s", (vid,))
            conn.commit()

    # The whole body is read at once here: the worker's last step comes from another thread.
    timer = threading.Timer(1.0, finish)
    timer.start()
    try:
        r = client.get(f"/api/videos/{vid}/events", headers=user["headers"])
        events = [json.loads(line[5:]) for line in r.get_data(as_text=True).splitlines() if line.startswith("data:")]
    finally:
        timer.join()
    assert events[0] == {"status": "ready", "progress": 100.0, "message": "playable at 360p · 480p 0 %",
                         "encoding": True, "encode_progress": 66.7, "thumbnail_url": f"/api/videos/{vid}/thumbnail"}
    assert events[-1]["encoding"] is False and events[-1]["message"] == "ready to watch"
    assert events[-1]["encode_progress"] == 100.0 and len(events) == 2
    listed = {v["id"]: v for v in client.get("/api/videos/mine", headers=user["headers"]).json["items"]}
    assert listed[vid]["encoding"] is False and listed[vid]["thumbnail_url"] == f"/api/videos/{vid}/thumbnail"


def test_admin_may_manage_any_video(client, posted, admin_user):
    assert client.get(f"/api/videos/{posted['id']}", headers=admin_user["headers"]).status_code == 200


def test_storage_down_during_post_never_leaves_uploading(make_app, user, media, env):
    """file-svc unreachable: a clear 503, and the video does not pretend to be uploading."""
    broken = make_app(FILE_SVC_URL="http://127.0.0.1:9").test_client()    # nothing listens on port 9
    r = broken.post("/api/videos", headers=user["headers"], data={
        "title": "storage down", "file": (io.BytesIO((media / "good.mp4").read_bytes()), "good.mp4")})
    assert r.status_code == 503 and r.json["code"] == "storage_unavailable" and r.headers["Retry-After"]
    rows = h.db_rows(env, "SELECT status, status_message FROM videos WHERE owner_id = %s AND title = 'storage down'",
                     (user["id"],))
    assert rows and all(row["status"] == "failed" and "storage" in row["status_message"] for row in rows)
