"""svcommon.timeutil and svcommon.mp4boxes: the small helpers every service shares."""
from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta, timezone

from svcommon import mp4boxes, timeutil


def test_utcnow_naive_is_utc_without_tzinfo():
    now = timeutil.utcnow_naive()
    assert now.tzinfo is None
    assert abs(now - datetime.now(timezone.utc).replace(tzinfo=None)) < timedelta(seconds=5)


def test_iso_formats():
    dt = datetime(2026, 1, 31, 12, 5, 9, 123456)
    assert timeutil.iso(dt) == "2026-01-31T12:05:09Z"
    assert timeutil.iso(dt, millis=True) == "2026-01-31T12:05:09.123Z"
    assert timeutil.iso(dt.replace(tzinfo=timezone.utc)) == "2026-01-31T12:05:09Z"
    assert timeutil.iso(None) is None
    assert timeutil.iso(1769861109) == "2026-01-31T12:05:09Z"                     # epoch seconds


def test_fixed_window_counting():
    start, window = datetime(2026, 1, 1), 900
    assert timeutil.count_in_window(0, start, start, window) == (1, start)          # first failure
    inside = start + timedelta(seconds=window)
    assert timeutil.count_in_window(3, start, inside, window) == (4, start)         # window still open
    later = inside + timedelta(microseconds=1)
    assert timeutil.count_in_window(3, start, later, window) == (1, later)          # a new window
    assert timeutil.seconds_until(start + timedelta(seconds=2.1), start) == 3
    assert timeutil.seconds_until(start, start + timedelta(seconds=1)) == 1         # never below 1


def _box(kind: bytes, body: bytes, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def test_box_walker_sizes_and_bounds():
    data = _box(b"ftyp", b"isom") + _box(b"moov", _box(b"trak", b"x")) + _box(b"mdat", b"12345", large=True)
    kinds = [(b.kind, data[b.body:b.end]) for b in mp4boxes.walk_bytes(data)]
    assert kinds == [(b"ftyp", b"isom"), (b"moov", _box(b"trak", b"x")), (b"mdat", b"12345")]
    moov = [b for b in mp4boxes.walk_bytes(data) if b.kind == b"moov"][0]
    assert [b.kind for b in mp4boxes.walk_bytes(data, moov.body, moov.end)] == [b"trak"]
    # size 0 runs to the end; a box past the end or smaller than its header stops the walk
    assert [b.kind for b in mp4boxes.walk_bytes(struct.pack(">I4s", 0, b"mdat") + b"abc")] == [b"mdat"]
    assert list(mp4boxes.walk_bytes(struct.pack(">I4s", 99, b"moov") + b"short")) == []
    assert list(mp4boxes.walk_bytes(struct.pack(">I4s", 4, b"moov") + b"0000")) == []
    assert list(mp4boxes.walk_bytes(struct.pack(">I4s", 1, b"moov"))) == []        # 64-bit size cut off


def test_box_walker_on_a_file_is_bounded():
    data = _box(b"free", b"") * 10
    files = [b.kind for b in mp4boxes.walk_file(io.BytesIO(data), max_boxes=3)]
    assert files == [b"free"] * 3
