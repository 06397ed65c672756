"""Read the few facts we need back out of packaged CMAF files (no ffprobe needed)."""
from __future__ import annotations

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
