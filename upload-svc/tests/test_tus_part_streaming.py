"""A tus PATCH whose declared length covers a whole part sends that part to S3 while its
bytes arrive (svcommon.partbuffers.PartStream), so the PATCH's answer does not wait for a
part's transfer after its last byte. A body that stops mid-part sends nothing of that part
(its bytes become the tail); one that stalls mid-part sends it once it is whole. The
PATCH's last whole part goes as two halves, sent side by side."""
from __future__ import annotations

import io
import json

import ingest_helpers as h
from tests.support.supervised import wait_until
from svcommon.partbuffers import PartStream
from upload_svc.settings import SETTINGS

MiB = 1024 * 1024
PART = next(int(s.default) for s in SETTINGS if s.name == "TUS_PART_SIZE")


def _count(requests: list, number: int) -> int:
    return sum(1 for r in requests if h.is_part_put(r[0], r[1], number))


def _held(cond) -> bool:
    """Whether ``cond()`` comes to hold within 30 s (asked from inside the app's read of the
    body, where a failed assertion would read as the client going away)."""
    try:
        wait_until(cond, 30, "gate", step=0.02)
        return True
    except AssertionError:
        return False


class _GatedBody(io.BytesIO):
    """A request body that pauses at byte ``gate`` until ``cond()`` holds (30 s at most) and
    then goes on; ``met`` says whether it held. ``good`` bytes at most, then the client is
    gone (ConnectionResetError)."""

    def __init__(self, data: bytes, gate: int, cond, good: int | None = None):
        super().__init__(data)
        self.gate, self.cond, self.good, self.met = gate, cond, len(data) if good is None else good, None

    def _limit(self, size: int) -> int:
        pos = self.tell()
        if pos >= self.good:
            raise ConnectionResetError("client went away")
        if pos == self.gate and self.met is None:
            self.met = _held(self.cond)
        stop = self.gate if pos < self.gate else self.good
        return min(stop - pos, size if size is not None and size >= 0 else stop - pos)

    def read(self, size=-1):
        return super().read(self._limit(size))

    def readinto(self, b):
        with memoryview(b) as view:
            return super().readinto(view[:self._limit(len(b))])

    read1 = read


def _patch(tus, loc: str, offset: int, body: _GatedBody, length: int):
    return tus.client.patch(loc, input_stream=body, content_length=length, headers={
        **h.TUS, **tus.headers, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})


def _stored(env, vid: str) -> bytes:
    return h.s3_client(env).get_object(Bucket=env["S3_BUCKET"], Key=f"originals/{vid}/original")["Body"].read()


def test_a_part_goes_to_s3_while_its_bytes_arrive(make_app, file_proxy, scratch, tus_for, media, env):
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "s.mp4", 2 * PART + 8 * MiB).read_bytes()
    first = 2 * PART + 5 * MiB
    r = tus.create(len(data), filename="s.mp4")
    loc, vid, upload_id = r.headers["Location"], r.headers["X-Video-Id"], r.headers["Location"].rsplit("/", 1)[1]
    # Half of part 1 sent, the client waits: part 1's PUT to S3 has already begun.
    body = _GatedBody(data[:first], PART // 2, lambda: _count(file_proxy.s3.started, 1) == 1)
    resp = _patch(tus, loc, 0, body, first)
    assert body.met, "part 1's PUT did not start before its bytes were all there"
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == first
    assert _count(file_proxy.s3.started, 1) == 1 and file_proxy.s3.aborted == []
    # The PATCH's last whole part went as two halves; the 5 MiB beyond it are the tail.
    row = h.db_rows(env, "SELECT parts, tail_size FROM uploads WHERE id = %s", (upload_id,))[0]
    assert [p["size"] for p in json.loads(row["parts"])] == [PART, PART // 2, PART // 2]
    assert row["tail_size"] == 5 * MiB
    resp = tus.patch(loc, first, data[first:])
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    assert _stored(env, vid) == data


def test_a_body_that_stops_mid_part_stores_its_bytes_as_the_tail(make_app, file_proxy, scratch, tus_for,
                                                                   media, env):
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "t.mp4", 2 * PART + 3 * MiB).read_bytes()
    r = tus.create(len(data), filename="t.mp4")
    loc, vid, upload_id = r.headers["Location"], r.headers["X-Video-Id"], r.headers["Location"].rsplit("/", 1)[1]
    # The PATCH declares every byte; the client goes away 3 MiB into part 2, whose PUT was
    # already streaming: that PUT is cut off (S3 stores nothing of it) and the 3 MiB are kept
    # as the tail, so the upload resumes from PART + 3 MiB.
    body = _GatedBody(data, PART + 2 * MiB, lambda: _count(file_proxy.s3.started, 2) == 1, good=PART + 3 * MiB)
    cut = _patch(tus, loc, 0, body, len(data))
    assert body.met
    assert cut.status_code == 204 and int(cut.headers["Upload-Offset"]) == PART + 3 * MiB
    wait_until(lambda: _count(file_proxy.s3.aborted, 2) == 1, 30, "part 2's PUT cut off")
    assert _count([d for d in file_proxy.s3.done if d[2] == 200], 2) == 0
    row = h.db_rows(env, "SELECT upload_offset, tail_size FROM uploads WHERE id = %s", (upload_id,))[0]
    assert (row["upload_offset"], row["tail_size"]) == (PART + 3 * MiB, 3 * MiB)
    resp = tus.patch(loc, PART + 3 * MiB, data[PART + 3 * MiB:])
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    assert _stored(env, vid) == data


def test_a_stalled_part_is_sent_once_it_is_whole(make_app, file_proxy, scratch, tus_for, media, env, monkeypatch):
    monkeypatch.setattr(PartStream, "STALL_SECONDS", 0.3)
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "st.mp4", PART + 5 * MiB).read_bytes()
    r = tus.create(len(data), filename="st.mp4")
    loc, vid = r.headers["Location"], r.headers["X-Video-Id"]
    # The client pauses mid-part longer than STALL_SECONDS: the streaming PUT gives up (S3
    # stores nothing of it) and the part is PUT again, whole, when its last byte is in.
    body = _GatedBody(data, PART // 4, lambda: _count(file_proxy.s3.aborted, 1) == 1)
    resp = _patch(tus, loc, 0, body, len(data))
    assert body.met, "the stalled PUT was not given up"
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    assert _count(file_proxy.s3.started, 1) == 2
    assert _count([d for d in file_proxy.s3.done if d[2] == 200], 1) == 1
    assert _stored(env, vid) == data


def test_a_streamed_part_that_s3_refuses_once_is_sent_again_whole(make_app, file_proxy, scratch, tus_for, media,
                                                                   env):
    tus = tus_for(make_app(FILE_SVC_URL=file_proxy.url, PROBE_SCRATCH_DIR=str(scratch)))
    data = h.pad_video(media / "good.mp4", scratch.parent / "r.mp4", 2 * PART + 5 * MiB).read_bytes()
    refused = []

    def busy_once(method, path):
        if h.is_part_put(method, path, 1) and not refused:
            refused.append(path)
            return "fail"
        return None
    file_proxy.s3.rule = busy_once
    r = tus.create(len(data), filename="r.mp4")
    resp = tus.patch(r.headers["Location"], 0, data)
    assert resp.status_code == 204 and int(resp.headers["Upload-Offset"]) == len(data)
    # The first PUT streamed the part and S3 answered 503; the retry (a fresh URL) sent it
    # all again from the part's first byte.
    assert _count(file_proxy.s3.started, 1) == 2 and len(refused) == 1
    assert _stored(env, r.headers["X-Video-Id"]) == data
