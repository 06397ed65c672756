"""Uploads at storage speed: a tus PATCH stores several parts at once while its bytes keep
arriving (only a contiguous run of stored parts is ever recorded; a failed part fails the
PATCH and the upload resumes from that run), and the probe of a finished upload reads the
local copy written while it streamed instead of downloading the original back (a failed
PATCH keeps the copy of what the upload row still records)."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import time

import pytest

import ingest_helpers as h
from tests.support.supervised import wait_until
from svcommon.filestore import PART_ATTEMPTS
from upload_svc import localcopy
from upload_svc.settings import SETTINGS

MiB = 1024 * 1024
PART = next(int(s.default) for s in SETTINGS if s.name == "TUS_PART_SIZE")   # the parts a PATCH stores
IN_FLIGHT = next(int(s.default) for s in SETTINGS if s.name == "TUS_PARTS_IN_FLIGHT")


_part_put = h.is_part_put       # part N's PUT to S3 (at the URL file-svc signed; file_proxy.s3 sees it)


def _original_gets(proxy) -> list[str]:
    return [p for p in proxy.requests_for("GET", "/objects/originals/") if p.endswith("/original")]


def _row(env, upload_id: str) -> dict:
    return h.db_rows(env, "SELECT upload_offset, parts, status FROM uploads WHERE id = %s", (upload_id,))[0]


def _copies(scratch) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in scratch.iterdir()}


def _stored_intact(env, vid: str, data: bytes) -> None:
    assert h.s3_keys(env, f"originals/{vid}/") == [f"originals/{vid}/original"]   # no tail left
    assert h.s3_pending_multipart(env, f"originals/{vid}/") == []
    body = h.s3_client(env).get_object(Bucket=env["S3_BUCKET"], Key=f"originals/{vid}/original")["Body"].read()
    assert body == data


def test_parts_are_stored_in_parallel_and_recorded_only_as_a_contiguous_run(
        make_app, file_proxy, scratch, tus_for, media, env):
    data = h.pad_video(media / "good.mp4", scratch.parent / "p40.mp4", 5 * PART + 123).read_bytes()
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    release = threading.Event()
    file_proxy.s3.rule = lambda m, path: release.wait(60) and None if _part_put(m, path, 1) else None
    r = tus.create(len(data), filename="p.mp4")
    loc, upload_id = r.headers["Location"], r.headers["Location"].rsplit("/", 1)[1]
    out = []
    th = threading.Thread(target=lambda: out.append(tus.patch(loc, 0, data)))
    th.start()
    try:
        # Part 1 is held; parts 2..IN_FLIGHT are stored meanwhile (one part at a time never
        # gets there).
        assert IN_FLIGHT >= 2
        wait_until(lambda: set(range(2, IN_FLIGHT + 1)) <= {n for n in range(2, 6) for m, p, s in file_proxy.s3.done
                                                           if _part_put(m, p, n)},
                   30, "parts 2..IN_FLIGHT stored while part 1 is held", step=0.05)
        row = _row(env, upload_id)
        assert row["upload_offset"] == 0 and row["parts"] in ("[]", None)   # nothing past the gap
    finally:
        release.set()
        th.join(120)
    assert out[0].status_code == 204 and int(out[0].headers["Upload-Offset"]) == len(data)
    _stored_intact(env, out[0].headers["X-Video-Id"], data)


def test_failed_part_mid_pipeline_fails_the_patch_and_the_upload_resumes(
        make_app, file_proxy, scratch, tus_for, media, env, caplog):
    data = h.pad_video(media / "good.mp4", scratch.parent / "p40.mp4", 5 * PART + 123).read_bytes()
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    file_proxy.s3.rule = lambda m, path: "fail" if _part_put(m, path, 3) else None
    r = tus.create(len(data), filename="p.mp4")
    loc, upload_id = r.headers["Location"], r.headers["Location"].rsplit("/", 1)[1]
    resp = tus.patch(loc, 0, data)
    assert resp.status_code == 503 and resp.json["code"] == "storage_unavailable"
    # Parts 4 and 5 may be in S3 too, but only the run before the failed part counts.
    assert int(tus.head(loc).headers["Upload-Offset"]) == 2 * PART
    assert _row(env, upload_id)["status"] == "receiving"
    # The local copy is rewound to the recorded run and kept: the probe still reads it.
    assert _copies(scratch) == {f"sv-tus-{upload_id}": 2 * PART}
    # S3 busy is tried PART_ATTEMPTS times, each with a freshly signed URL, before the 503.
    assert len([p for p in file_proxy.s3.requests_for("PUT", "uploadId=") if _part_put("PUT", p, 3)]) == PART_ATTEMPTS
    assert len([p for p in file_proxy.requests_for("GET", "upload_id=") if "&part=3&" in p]) == PART_ATTEMPTS
    failed = [r for r in caplog.records if r.name == "svcommon.filestore" and r.getMessage().startswith("a part's PUT")]
    assert [(r.part, r.attempt) for r in failed] == [(3, n) for n in range(1, PART_ATTEMPTS + 1)]
    file_proxy.s3.rule = None
    resp = tus.patch(loc, 2 * PART, data[2 * PART:])
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    _stored_intact(env, resp.headers["X-Video-Id"], data)
    assert _original_gets(file_proxy) == [] and os.listdir(scratch) == []


class _BrokenBody(io.BytesIO):
    """A request body whose client goes away after ``good`` bytes."""

    def __init__(self, data: bytes, good: int):
        super().__init__(data)
        self.good = good

    def _check(self):
        if self.tell() >= self.good:
            raise ConnectionResetError("client went away")

    def read(self, size=-1):
        self._check()
        return super().read(min(self.good - self.tell(), size if size >= 0 else self.good))

    def readinto(self, b):
        self._check()
        with memoryview(b) as view:
            return super().readinto(view[:self.good - self.tell()])

    read1 = read


def test_checksummed_patch_that_fails_keeps_the_copy(make_app, file_proxy, scratch, tus_for, media):
    """A checksummed PATCH whose client disconnects, and one whose checksum is wrong, record
    nothing and keep the copy of the bytes recorded before them."""
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "p12c.mp4", 12 * MiB).read_bytes()
    loc = tus.create(len(data), filename="c.mp4").headers["Location"]
    upload_id = loc.rsplit("/", 1)[1]
    assert tus.patch(loc, 0, data[:3 * MiB]).status_code == 204
    rest = data[3 * MiB:]
    digest = "sha1 " + base64.b64encode(hashlib.sha1(rest).digest()).decode()
    cut = tus.client.patch(loc, input_stream=_BrokenBody(rest, 5 * MiB), headers={
        **h.TUS, **tus.headers, "Upload-Offset": str(3 * MiB), "Content-Type": "application/offset+octet-stream",
        "Upload-Checksum": digest})
    assert cut.status_code == 204 and int(cut.headers["Upload-Offset"]) == 3 * MiB
    assert _copies(scratch) == {f"sv-tus-{upload_id}": 3 * MiB}
    wrong = "sha1 " + base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    bad = tus.patch(loc, 3 * MiB, rest, **{"Upload-Checksum": wrong})
    assert bad.status_code == 460 and bad.json["code"] == "checksum_mismatch"
    assert _copies(scratch) == {f"sv-tus-{upload_id}": 3 * MiB}
    resp = tus.patch(loc, 3 * MiB, rest, **{"Upload-Checksum": digest})
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    assert _original_gets(file_proxy) == [] and os.listdir(scratch) == []


@pytest.mark.parametrize("cleanup", ["storage back", "storage still down"])
def test_finished_upload_that_cannot_be_checked_is_removed(make_app, file_proxy, scratch, tus_for, media, env,
                                                           tmp_path, cleanup):
    """No complete local copy (a PATCH went to another replica) and the original cannot be
    fetched back: the finished upload is removed and the client told to upload again, never
    left 'uploading' forever with every retry answered 409. Storage still down for the
    clean-up too: still the clear 503 (never a 500), the video listed as failed with the
    reason (never 'uploading' or 'deleting' forever), and deleting it later removes all."""
    a = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    other = tmp_path / "other"
    other.mkdir()
    b = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(other)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "p9.mp4", 9 * MiB).read_bytes()
    r = a.create(len(data), filename="unchecked.mp4")
    loc, vid = r.headers["Location"], r.headers["X-Video-Id"]
    assert a.patch(loc, 0, data[:3 * MiB]).status_code == 204
    assert b.patch(loc, 3 * MiB, data[3 * MiB:6 * MiB]).status_code == 204     # no copy there
    down = []

    def rule(method, path):
        if method == "GET" and path.split("?")[0].endswith("/original") and "upload_id=" not in path:
            down.append(path)
            return "fail"
        return "fail" if down and cleanup == "storage still down" else None
    file_proxy.rule = rule
    resp = a.patch(loc, 6 * MiB, data[6 * MiB:])
    assert resp.status_code == 503 and resp.json["code"] == "probe_failed" and resp.headers["Retry-After"] == "30"
    assert len(down) == 1 and os.listdir(scratch) == [] and os.listdir(other) == []
    if cleanup == "storage still down":
        assert "listed as failed" in resp.json["error"]
        [row] = h.db_rows(env, "SELECT status, status_message FROM videos WHERE id = %s", (vid,))
        assert row["status"] == "failed" and "storage was unavailable" in row["status_message"], row
        file_proxy.rule = None
        assert a.client.delete(f"/api/videos/{vid}", headers=a.headers).status_code == 204
    assert h.db_rows(env, "SELECT id FROM videos WHERE id = %s", (vid,)) == []
    assert h.video_objects(env, vid) == [] and h.s3_pending_multipart(env, f"originals/{vid}/") == []
    assert a.head(loc).status_code == 404 and a.patch(loc, len(data), b"").status_code == 404


def test_probe_reads_the_local_copy_not_a_download(make_app, file_proxy, scratch, user, tus_for, media):
    """POST and tus (in unaligned chunks, so tails and resumed copies are involved): the
    original is never fetched back from file-svc, and no local copy outlives the upload."""
    app = make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch))
    client = app.test_client()
    data = h.pad_video(media / "good.mp4", scratch.parent / "p20.mp4", 20 * MiB + 7).read_bytes()
    # A prebuilt body: the test client would spool a large form into a temp file it leaks.
    b = "pipelineboundary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\npost\r\n--{b}\r\n"
            f"Content-Disposition: form-data; name=\"file\"; filename=\"p.mp4\"\r\n\r\n").encode() + data + \
        f"\r\n--{b}--\r\n".encode()
    r = client.post("/api/videos", headers=user["headers"], data=body,
                    content_type=f"multipart/form-data; boundary={b}")
    assert r.status_code == 201 and r.json["video"]["status"] == "queued"
    loc, resp = tus_for(app).upload(data, chunk=3 * MiB + 1, filename="t.mp4")
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    v = client.get(f"/api/videos/{resp.headers['X-Video-Id']}", headers=user["headers"]).json["video"]
    assert v["status"] == "queued" and v["width"] == 320
    assert _original_gets(file_proxy) == []
    assert os.listdir(scratch) == []


def test_copy_with_a_hole_falls_back_to_the_download(make_app, file_proxy, scratch, tus_for, media, env, tmp_path):
    """A PATCH served by another replica (its own scratch) leaves this one's copy short:
    it is dropped and the probe downloads the original, as before."""
    a = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    other = tmp_path / "other"
    other.mkdir()
    b = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(other)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "p12.mp4", 12 * MiB).read_bytes()
    loc = a.create(len(data), filename="hole.mp4").headers["Location"]
    assert a.patch(loc, 0, data[:4 * MiB]).status_code == 204
    assert b.patch(loc, 4 * MiB, data[4 * MiB:8 * MiB]).status_code == 204     # no copy there
    resp = a.patch(loc, 8 * MiB, data[8 * MiB:])
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    assert len(_original_gets(file_proxy)) == 1
    _stored_intact(env, resp.headers["X-Video-Id"], data)
    assert os.listdir(scratch) == [] and os.listdir(other) == []


def test_refused_post_and_terminated_tus_leave_no_local_copy(make_app, scratch, user, tus_for, media):
    app = make_app(PROBE_SCRATCH_DIR=str(scratch))
    client = app.test_client()
    r = client.post("/api/videos", headers=user["headers"],
                    data={"title": "text", "file": (io.BytesIO((media / "text.mp4").read_bytes()), "t.mp4")})
    assert r.status_code == 422 and os.listdir(scratch) == []
    tus = tus_for(app)
    loc = tus.create(10 * MiB, filename="x.mp4").headers["Location"]
    assert tus.patch(loc, 0, h.MP4_HEAD + b"\0" * MiB).status_code == 204
    assert len(os.listdir(scratch)) == 1                   # the copy of the first MiB
    assert client.delete(loc, headers={**h.TUS, **user["headers"]}).status_code == 204
    assert os.listdir(scratch) == []


def test_next_patch_removes_a_killed_writers_copy(make_app, scratch, tus_for, media):
    """A process killed mid-PATCH leaves its copy under its lease token; the PATCH that
    resumes the upload holds the lease and removes it."""
    tus = tus_for(make_app(PROBE_SCRATCH_DIR=str(scratch)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "p6.mp4", 6 * MiB).read_bytes()
    loc = tus.create(len(data), filename="k.mp4").headers["Location"]
    upload_id = loc.rsplit("/", 1)[1]
    assert tus.patch(loc, 0, data[:MiB]).status_code == 204
    (scratch / f"sv-tus-{upload_id}.deadbeef").write_bytes(b"\0" * 2 * MiB)   # the killed writer's
    resp = tus.patch(loc, MiB, data[MiB:])
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    assert os.listdir(scratch) == []


def test_sweep_removes_only_stale_copies(scratch):
    cfg = {"PROBE_SCRATCH_DIR": str(scratch)}
    now = time.time()
    old = localcopy.IDLE_SECONDS + 60
    for name, age in [("sv-post-dead", old), ("sv-tus-abc", old), ("sv-tus-abc.token", old),
                      ("sv-tus-live", 5), ("sv-post-live", 5), ("unrelated.txt", old)]:
        (scratch / name).write_bytes(b"x")
        os.utime(scratch / name, (now - age, now - age))
    assert localcopy.sweep(cfg, now) == 3
    assert sorted(os.listdir(scratch)) == ["sv-post-live", "sv-tus-live", "unrelated.txt"]
