"""One fragmented MP4 file from a session's video and audio tracks, without re-encoding
(downloads.py). Pure byte surgery over svcommon.mp4boxes, nothing decoded:

- the header: the video init's ``ftyp``, then one ``moov`` holding the video init's
  ``mvhd`` (next_track_ID 3), its ``trak`` (track 1), the audio init's ``trak`` renumbered
  to track 2, and one ``mvex`` with both ``trex``;
- every segment's ``moof``+``mdat`` (its ``styp`` and ``sidx`` dropped: a ``sidx`` names
  track 1 and indexes a lone segment), audio ``tfhd`` renumbered to track 2, ``mfhd``
  sequence numbers counted up in file order. ``trun`` data offsets are relative to their
  ``moof`` (ffmpeg's packaging), so a moof+mdat pair can move as a whole.

init + fragments concatenated is a valid fMP4 file (ISO/IEC 14496-12 8.8); the bytes of
each fragment's samples are untouched, so the A/B watermark of each segment survives."""
from __future__ import annotations

import struct

from svcommon.mp4boxes import Box, walk_bytes

VIDEO_TRACK, AUDIO_TRACK = 1, 2


class MuxError(ValueError):
    """An init segment or fragment is not laid out as our packaging writes it."""


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _children(data: bytes, parent: Box | None = None) -> list[Box]:
    return list(walk_bytes(data, parent.body if parent else 0, parent.end if parent else None))


def _one(boxes: list[Box], kind: bytes) -> Box:
    found = [b for b in boxes if b.kind == kind]
    if len(found) != 1:
        raise MuxError(f"expected one {kind.decode()} box, found {len(found)}")
    return found[0]


def _set_u32(buf: bytearray, offset: int, value: int) -> None:
    struct.pack_into(">I", buf, offset, value)


def _renumbered_trak(init: bytes, trak: Box, track_id: int) -> bytes:
    out = bytearray(init[trak.start:trak.end])
    tkhd = _one(_children(init, trak), b"tkhd")
    version = init[tkhd.body]
    # full box header (4), then creation/modification times (4+4, or 8+8 in version 1)
    _set_u32(out, tkhd.body - trak.start + (4 + 16 if version == 1 else 4 + 8), track_id)
    return bytes(out)


def _renumbered_trex(init: bytes, moov: Box, track_id: int) -> bytes:
    trex = _one(_children(init, _one(_children(init, moov), b"mvex")), b"trex")
    out = bytearray(init[trex.start:trex.end])
    _set_u32(out, 8 + 4, track_id)           # after the header and version/flags
    return bytes(out)


def merged_header(video_init: bytes, audio_init: bytes | None) -> bytes:
    """``ftyp`` + one ``moov`` with the video track (1) and, if given, the audio track (2)."""
    top = _children(video_init)
    ftyp, moov = _one(top, b"ftyp"), _one(top, b"moov")
    if audio_init is None:
        return video_init[ftyp.start:ftyp.end] + video_init[moov.start:moov.end]
    kids = _children(video_init, moov)
    mvhd = _one(kids, b"mvhd")
    a_moov = _one(_children(audio_init), b"moov")
    a_mvhd = _one(_children(audio_init, a_moov), b"mvhd")
    if _mvhd_timescale(video_init, mvhd) != _mvhd_timescale(audio_init, a_mvhd):
        raise MuxError("video and audio movie timescales differ (edit lists would disagree)")
    mvhd_bytes = bytearray(video_init[mvhd.start:mvhd.end])
    _set_u32(mvhd_bytes, len(mvhd_bytes) - 4, AUDIO_TRACK + 1)       # next_track_ID, the last field
    body = bytes(mvhd_bytes)
    for box in kids:
        if box.kind == b"trak":
            body += _renumbered_trak(video_init, box, VIDEO_TRACK)
    body += _renumbered_trak(audio_init, _one(_children(audio_init, a_moov), b"trak"), AUDIO_TRACK)
    body += _box(b"mvex", _renumbered_trex(video_init, moov, VIDEO_TRACK)
                 + _renumbered_trex(audio_init, a_moov, AUDIO_TRACK))
    body += b"".join(video_init[b.start:b.end] for b in kids if b.kind not in (b"mvhd", b"trak", b"mvex"))
    return video_init[ftyp.start:ftyp.end] + _box(b"moov", body)


def _mvhd_timescale(data: bytes, mvhd: Box) -> int:
    version = data[mvhd.body]
    return struct.unpack_from(">I", data, mvhd.body + (4 + 16 if version == 1 else 4 + 8))[0]


def fragment(segment: bytes, track_id: int, sequence: int) -> bytes:
    """The segment's ``moof``+``mdat`` pairs, renumbered: ``tfhd`` → ``track_id``, ``mfhd`` →
    ``sequence`` (a segment of our packaging holds one fragment; any more get sequence+k)."""
    out = bytearray()
    for box in _children(segment):
        if box.kind == b"moof":
            moof = bytearray(segment[box.start:box.end])
            for child in _children(segment, box):
                if child.kind == b"mfhd":
                    _set_u32(moof, child.body - box.start + 4, sequence)
                    sequence += 1
                elif child.kind == b"traf":
                    tfhd = _one(_children(segment, child), b"tfhd")
                    _set_u32(moof, tfhd.body - box.start + 4, track_id)
            out += moof
        elif box.kind == b"mdat":
            out += segment[box.start:box.end]
    if not out:
        raise MuxError("a segment without moof/mdat")
    return bytes(out)


def interleaved(video_durations: list[float], audio_durations: list[float]) -> list[tuple[str, int]]:
    """(track, index) in order of start time, video first on a tie: how the fragments are
    laid out, so a player reading the file front to back has both tracks at hand."""
    order = []
    for track, durations in (("video", video_durations), ("audio", audio_durations)):
        t = 0.0
        for i, d in enumerate(durations):
            order.append((t, 0 if track == "video" else 1, track, i))
            t += d
    return [(track, i) for _, _, track, i in sorted(order)]
