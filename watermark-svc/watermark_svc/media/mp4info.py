"""Read the few facts we need back out of packaged CMAF files (no ffprobe needed)."""
from __future__ import annotations

import struct
from pathlib import Path

# Containers whose children we descend into on the way to the avcC box.
_CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avc3"}
# Bytes of fixed fields before the child boxes of these sample-description boxes.
_SKIP_BEFORE_CHILDREN = {b"stsd": 8, b"avc1": 78, b"avc3": 78}


def _find_box(data: bytes, path: tuple[bytes, ...], start: int = 0, end: int | None = None) -> bytes | None:
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        if kind == path[0]:
            body_start, body_end = pos + header, pos + size
            if len(path) == 1:
                return data[body_start:body_end]
            skip = _SKIP_BEFORE_CHILDREN.get(kind, 0)
            return _find_box(data, path[1:], body_start + skip, body_end)
        pos += size
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
