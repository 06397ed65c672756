"""tus 1.0 against the real stack: creation, chunked PATCH (unaligned chunks → tail
objects), resume from HEAD, completion → probe → queued + job, termination, refusals."""
from __future__ import annotations

import base64
import hashlib

import pytest

import ingest_helpers as h

MiB = 1024 * 1024


def test_options_advertises_extensions(client):
    r = client.options("/api/uploads")
    assert r.status_code == 204 and r.headers["Tus-Version"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) >= {"creation", "termination", "checksum"}
    assert int(r.headers["Tus-Max-Size"]) > 0


def test_upload_in_unaligned_chunks_reaches_queued(tus, client, user, media, env):
    # A 17 MiB+ file (real video + padding) in 3 MiB chunks: a part of 16 MiB and tails between.
    padded = h.pad_video(media / "good.mp4", media / "padded17.mp4", 17 * MiB + 4321)
    data = padded.read_bytes()
    loc, resp = tus.upload(data, chunk=3 * MiB, filename="padded.mp4", title="Nine megs")
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    vid = resp.headers["X-Video-Id"]
    v = client.get(f"/api/videos/{vid}", headers=user["headers"]).json["video"]
    assert v["status"] == "queued" and v["title"] == "Nine megs" and v["size"] == len(data)
    assert v["duration"] > 1 and v["width"] == 320 and v["video_codec"] == "h264"
    assert h.s3_keys(env, f"originals/{vid}/") == [f"originals/{vid}/original"]  # no tail left behind
    assert h.s3_pending_multipart(env, f"originals/{vid}/") == []
    body = h.s3_client(env).get_object(Bucket=env["S3_BUCKET"], Key=f"originals/{vid}/original")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    jobs = h.db_rows(env, "SELECT kind, status FROM jobs WHERE subject = %s", (vid,))
    assert jobs == [{"kind": "video.process", "status": "queued"}]
    # HEAD after completion still answers with the full offset (a late resume is a no-op).
    assert int(tus.head(loc).headers["Upload-Offset"]) == len(data)


def test_resume_from_head_after_partial_chunk(tus, media, env):
    data = h.pad_video(media / "good.mp4", media / "padded6.mp4", 6 * MiB).read_bytes()
    r = tus.create(len(data), filename="x.mp4")
    loc = r.headers["Location"]
    assert tus.patch(loc, 0, data[:1000]).status_code == 204
    assert int(tus.head(loc).headers["Upload-Offset"]) == 1000
    r = tus.patch(loc, 0, data[:1000])                                  # stale offset
    assert r.status_code == 409 and r.headers["Upload-Offset"] == "1000" and r.is_json
    r = tus.patch(loc, 1000, data[1000:])
    assert r.status_code == 204 and int(r.headers["Upload-Offset"]) == len(data)


def test_checksum_verified(tus, media):
    data = media.joinpath("good.mp4").read_bytes()
    loc = tus.create(len(data), filename="c.mp4").headers["Location"]
    bad = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    r = tus.patch(loc, 0, data[:5000], **{"Upload-Checksum": f"sha1 {bad}"})
    assert r.status_code == 460 and r.json["code"] == "checksum_mismatch"
    assert tus.head(loc).headers["Upload-Offset"] == "0"
    good = base64.b64encode(hashlib.sha1(data).digest()).decode()
    r = tus.patch(loc, 0, data, **{"Upload-Checksum": f"sha1 {good}"})
    assert r.status_code == 204


def test_termination_removes_everything(tus, user, env, media):
    data = h.pad_video(media / "good.mp4", media / "padded10.mp4", 10 * MiB).read_bytes()
    r = tus.create(len(data), filename="t.mp4")
    loc, vid = r.headers["Location"], r.headers["X-Video-Id"]
    assert tus.patch(loc, 0, data[:9 * MiB]).status_code == 204      # one part + a tail stored
    assert h.s3_keys(env, f"originals/{vid}/") and h.s3_pending_multipart(env, f"originals/{vid}/")
    r = tus.client.delete(loc, headers={**h.TUS, **user["headers"]})
    assert r.status_code == 204
    assert h.video_objects(env, vid) == []
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    assert tus.head(loc).status_code == 404


def test_abandoned_upload_is_swept(tus, make_app, user, env, media):
    """An upload idle past its Upload-Expires is removed (multipart aborted, objects and rows
    deleted) the next time anyone creates an upload."""
    data = h.pad_video(media / "good.mp4", media / "padded-abandoned.mp4", 10 * MiB).read_bytes()
    r = tus.create(len(data), filename="abandoned.mp4")
    loc, vid = r.headers["Location"], r.headers["X-Video-Id"]
    assert tus.patch(loc, 0, data[:9 * MiB]).status_code == 204
    assert h.s3_pending_multipart(env, f"originals/{vid}/")
    h.db_execute(env, "UPDATE uploads SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE video_id = %s", (vid,))
    fresh = make_app().test_client()                 # another process: its first sweep is due
    r = fresh.post("/api/uploads", headers={**h.TUS, **user["headers"], "Upload-Length": "1000",
                                            "Upload-Metadata": h.tus_metadata(filename="next.mp4")})
    assert r.status_code == 201
    assert h.video_objects(env, vid) == [] and h.s3_pending_multipart(env, f"originals/{vid}/") == []
    assert h.db_rows(env, "SELECT id FROM videos WHERE id = %s", (vid,)) == []
    assert tus.head(loc).status_code == 404


class Crash(BaseException):
    """A process killed mid-request: nothing after it runs, its transaction is never committed."""


def _killed_before_queueing(tus, media, monkeypatch, filename: str) -> tuple[bytes, str, str]:
    """A tus upload whose last PATCH wrote every byte, then died before the video was queued
    (its request killed there): left 'completing'. Returns (bytes, Location, video id)."""
    from upload_svc import ingest
    data = media.joinpath("good.mp4").read_bytes()
    r = tus.create(len(data), filename=filename)
    loc, vid = r.headers["Location"], r.headers["X-Video-Id"]

    def killed(*args, **kw):
        raise Crash()
    monkeypatch.setattr(ingest, "finalize", killed)
    with pytest.raises(Crash):
        tus.patch(loc, 0, data)
    monkeypatch.undo()
    return data, loc, vid


def test_crash_before_the_video_is_queued_is_finished_by_the_resume(tus, client, user, media, env, monkeypatch):
    """The request that wrote the last byte dies after the parts are assembled but before the
    video is queued. The client's resume (HEAD, which shows every byte received, so tus-js-client
    sends no PATCH again) finishes the work: the video is queued once. Found by the
    fault-injection matrix: the upload was marked done before the queueing was committed, so
    the video stayed 'uploading' for ever and every PATCH got 409 upload_finished."""
    data, loc, vid = _killed_before_queueing(tus, media, monkeypatch, "crash.mp4")
    head = tus.head(loc)
    assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == len(data)
    v = client.get(f"/api/videos/{vid}", headers=user["headers"]).json["video"]
    assert v["status"] == "queued", v
    assert h.db_rows(env, "SELECT kind FROM jobs WHERE subject = %s", (vid,)) == [{"kind": "video.process"}]
    assert tus.head(loc).status_code == 200                       # a second resume changes nothing
    assert tus.patch(loc, len(data), b"").status_code == 409      # upload_finished
    assert len(h.db_rows(env, "SELECT kind FROM jobs WHERE subject = %s", (vid,))) == 1


def test_a_resume_leaves_a_live_finisher_alone_and_finishes_a_dead_ones_work(tus, client, user, media, env,
                                                                             monkeypatch):
    """While a request is finishing an upload (it holds the upload's completion lock, as in
    its probe), a resume's HEAD answers at once with every byte received and does not finish
    it a second time: no row lock, so it never waits behind the probe (it used to, up to the
    lock-wait timeout, then got 503 database_unavailable). Once that finisher's connection is
    gone (killed: MariaDB drops its lock), the next HEAD finishes the work, once."""
    data, loc, vid = _killed_before_queueing(tus, media, monkeypatch, "busy.mp4")
    upload_id = loc.rsplit("/", 1)[1]
    finisher = h.db_conn(env).conn             # a live finisher, in the middle of its probe
    cur = finisher.cursor()
    cur.execute("SELECT GET_LOCK(%s, 0)", (f"sv_tus_done_{upload_id}",))
    assert cur.fetchall() == [(1,)]
    try:
        head = tus.head(loc)
        assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == len(data)
        assert client.get(f"/api/videos/{vid}", headers=user["headers"]).json["video"]["status"] == "uploading"
        assert h.db_rows(env, "SELECT status FROM uploads WHERE id = %s", (upload_id,)) == [{"status": "completing"}]
    finally:
        finisher.close()                       # the finisher dies: its lock goes with its connection
    assert tus.head(loc).status_code == 200
    assert client.get(f"/api/videos/{vid}", headers=user["headers"]).json["video"]["status"] == "queued"
    assert h.db_rows(env, "SELECT kind FROM jobs WHERE subject = %s", (vid,)) == [{"kind": "video.process"}]
