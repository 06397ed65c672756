"""The streaming POST stores its file as S3 parts through file-svc, a few in flight: a
client that goes away while parts are in flight leaves nothing (no row, object, multipart
upload or local copy), and a completed POST's original is byte-identical."""
from __future__ import annotations

import io
import os
import threading

import ingest_helpers as h
from upload_svc.settings import SETTINGS

MiB = 1024 * 1024
PART = next(int(s.default) for s in SETTINGS if s.name == "TUS_PART_SIZE")
B = "partsboundary"


def _form(data: bytes, title: str = "parts") -> bytes:
    return (f"--{B}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n--{B}\r\n"
            f"Content-Disposition: form-data; name=\"file\"; filename=\"p.mp4\"\r\n\r\n").encode() + data + \
        f"\r\n--{B}--\r\n".encode()


class _DyingBody(io.BytesIO):
    """The whole form announced, but the client goes away after ``good`` bytes; ``died`` is
    set then."""

    def __init__(self, data: bytes, good: int):
        super().__init__(data)
        self.good, self.died = good, threading.Event()

    def readinto(self, b):
        if self.tell() >= self.good:
            self.died.set()
            raise ConnectionResetError("client went away")
        with memoryview(b) as view:
            return super().readinto(view[:self.good - self.tell()])

    def read(self, size=-1):
        buf = bytearray(size if size >= 0 else self.good)
        return bytes(buf[:self.readinto(buf)])


def _part_put(method: str, path: str) -> bool:
    """Part 1's PUT to S3 (at the URL file-svc signed)."""
    return method == "PUT" and "uploadId=" in path and "partNumber=1&" in path


def test_client_gone_with_parts_in_flight_leaves_nothing(make_app, file_proxy, scratch, user, env, media):
    app = make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch))
    data = h.pad_video(media / "good.mp4", scratch.parent / "big.mp4", 3 * PART).read_bytes()
    body = _DyingBody(_form(data), 2 * PART + MiB)
    release = threading.Event()
    # Part 1 is held until the client has gone: it is still in flight when the body dies.
    file_proxy.s3.rule = lambda m, path: release.wait(60) and None if _part_put(m, path) else None
    out = []
    th = threading.Thread(target=lambda: out.append(app.test_client().post(
        "/api/videos", input_stream=body, headers={**user["headers"], "Content-Type": f"multipart/form-data; boundary={B}",
                                                   "Content-Length": str(len(body.getvalue()))})))
    th.start()
    try:
        assert body.died.wait(60)
        # Part 1 still held: the multipart upload is not aborted under it.
        assert [p for m, p, s in file_proxy.done if m == "DELETE"] == []
    finally:
        release.set()
        th.join(120)
    assert out and out[0].status_code == 400, out and out[0].get_data(as_text=True)
    puts = [p for m, p, s in file_proxy.s3.done if m == "PUT" and "uploadId=" in p]
    assert len(puts) == 2            # both parts in flight were let finish before the abort
    aborts = [p for m, p, s in file_proxy.done if m == "DELETE" and "upload_id=" in p]
    assert len(aborts) == 1
    [created] = [p for m, p, s in file_proxy.done if m == "POST" and "?uploads" in p]
    vid = created.split("/")[3]                    # /objects/originals/{video}/original?uploads
    assert h.db_rows(env, "SELECT id FROM videos WHERE owner_id = %s", (user["id"],)) == []
    assert h.video_objects(env, vid) == []         # objects and unfinished multipart uploads
    assert os.listdir(scratch) == []


def test_post_in_parts_is_stored_intact(make_app, scratch, user, env, media):
    """Several full parts and a short last one, through the parts pipeline."""
    app = make_app(PROBE_SCRATCH_DIR=str(scratch))
    data = h.pad_video(media / "good.mp4", scratch.parent / "p.mp4", 2 * PART + 12345).read_bytes()
    form = _form(data)
    r = app.test_client().post("/api/videos", input_stream=io.BytesIO(form), headers={
        **user["headers"], "Content-Type": f"multipart/form-data; boundary={B}", "Content-Length": str(len(form))})
    assert r.status_code == 201, r.get_data(as_text=True)
    vid = r.json["video"]["id"]
    got = h.s3_client(env).get_object(Bucket=env["S3_BUCKET"], Key=f"originals/{vid}/original")["Body"].read()
    assert got == data and r.json["video"]["size"] == len(data)
    assert h.s3_pending_multipart(env, f"originals/{vid}/") == [] and os.listdir(scratch) == []
