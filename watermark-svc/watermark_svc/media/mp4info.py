"""Read the few facts we need back out of packaged CMAF files (no ffprobe needed), and
move a chunk's segments to their place in the whole video (retime_segment)."""
from __future__ import annotations

import struct
from pathlib import Path

from svcommon.mp4boxes import walk_bytes

# Containers whose children we descend into on the way to the avcC box.
_CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avc3"}
# Bytes of fixed fields before the child boxes of these sample-description boxes.
_SKIP_BEFORE_CHILDREN = {b"stsd": 8, b"avc1": 78, b"avc3": 78}


def _find_box(data: bytes, path: tuple[bytes, ...], start: int = 0, end: int | None = None) -> bytes | None:
    for box in walk_bytes(data, start, end):
        if box.kind == path[0]:
            if len(path) == 1:
                return data[box.body:box.end]
            return _find_box(data, path[1:], box.body + _SKIP_BEFORE_CHILDREN.get(box.kind, 0), box.end)
    return None


def avc_codecs_string(init_path: str | Path) -> str:
    """RFC 6381 codecs value (e.g. "avc1.64001f") from the init segment's avcC."""
    data = Path(init_path).read_bytes()
    avcc = _find_box(data, (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avcC"))
    if avcc is None or len(avcc) < 4:
        raise ValueError(f"no avcC box in {init_path}")
    profile, compat, level = avcc[1], avcc[2], avcc[3]
    return f"avc1.{profile:02x}{compat:02x}{level:02x}"


def hls_segment_durations(playlist_path: str | Path) -> list[float]:
    """EXTINF durations, in order, from a media playlist written by ffmpeg."""
    out = []
    for line in Path(playlist_path).read_text().splitlines():
        if line.startswith("#EXTINF:"):
            out.append(float(line[len("#EXTINF:"):].split(",")[0]))
    return out


def media_timescale(init_path: str | Path) -> int:
    """The track's timescale (ticks per second) from the init segment's mdhd."""
    data = Path(init_path).read_bytes()
    mdhd = _find_box(data, (b"moov", b"trak", b"mdia", b"mdhd"))
    if mdhd is None or len(mdhd) < 24:
        raise ValueError(f"no mdhd box in {init_path}")
    return struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0]


def retime_segment(data: bytes, sequence: int, offset: int) -> bytes:
    """A packaged segment moved ``offset`` timescale ticks later with fragment number
    ``sequence``: sidx earliest presentation time, mfhd sequence number and tfdt base
    decode time rewritten in place (same sizes). A chunk is packaged as if it were a
    video of its own (timestamps from 0, fragments from 1); this makes its segments
    the ones a packaging of the whole video would have written."""
    out = bytearray(data)
    for box in walk_bytes(data):
        if box.kind == b"sidx":
            _add(out, box.body + 12, data[box.body] == 1, offset)
        elif box.kind == b"moof":
            for child in walk_bytes(data, box.body, box.end):
                if child.kind == b"mfhd":
                    struct.pack_into(">I", out, child.body + 4, sequence)
                elif child.kind == b"traf":
                    for t in walk_bytes(data, child.body, child.end):
                        if t.kind == b"tfdt":
                            _add(out, t.body + 4, data[t.body] == 1, offset)
    return bytes(out)


def _add(buf: bytearray, pos: int, wide: bool, offset: int) -> None:
    fmt = ">Q" if wide else ">I"
    value = struct.unpack_from(fmt, buf, pos)[0] + offset
    if value >= 1 << (64 if wide else 32):
        raise ValueError("timestamp does not fit its 32-bit field")
    struct.pack_into(fmt, buf, pos, value)
