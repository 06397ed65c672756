"""Caption files as uploaded (WebVTT, or SRT converted): checked block by block, then
parsed and written out again as plain WebVTT by webvtt-py, so what is stored and served
is what was checked. webvtt-py skips a block it cannot read without a word (a cue with a
bad timestamp vanishes); the scan here finds every block first, so a malformed one is
refused with its line number instead of being dropped."""
from __future__ import annotations

import re
from dataclasses import dataclass

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from svcommon.errors import APIError

VTT_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
VTT_OTHER_BLOCKS = re.compile(r"^(?:NOTE|STYLE|REGION)(?:[ \t].*)?$")
TIMINGS_HINT = {"vtt": "HH:MM:SS.mmm --> HH:MM:SS.mmm", "srt": "HH:MM:SS,mmm --> HH:MM:SS,mmm"}


@dataclass(frozen=True)
class CaptionTrack:
    vtt: str               # normalised WebVTT, what is stored and served
    cue_count: int
    source_format: str     # 'vtt' or 'srt'


@dataclass(frozen=True)
class _Cue:
    line: int              # the line number of its timings
    timings: str           # that line
    lines: list[str]       # the block, as the library reads it


def malformed(line: int, message: str) -> APIError:
    return APIError(400, "caption_malformed", f"line {line}: {message}")


def _text(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise APIError(400, "caption_encoding", f"line {line}: the file is not UTF-8 text (save it as UTF-8)")
    if "\x00" in text:
        raise malformed(text[:text.index("\x00")].count("\n") + 1, "a NUL character: this is not a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines with the (1-based) number of their first line."""
    out, start, cur = [], 0, []
    for n, line in enumerate(lines, 1):
        if line.strip():
            if not cur:
                start = n
            cur.append(line)
        elif cur:
            out.append((start, cur))
            cur = []
    if cur:
        out.append((start, cur))
    return out


def detect_format(text: str, filename: str) -> str:
    name = filename.lower()
    if name.endswith(".srt"):
        return "srt"
    if name.endswith(".vtt") or text.startswith("WEBVTT"):
        return "vtt"
    first = text.lstrip("\n").split("\n", 1)[0].strip()
    if first.isdigit():
        return "srt"
    raise APIError(400, "caption_format", "not a caption file we read: upload WebVTT (.vtt, first line "
                   "'WEBVTT') or SubRip (.srt)")


def _cues(blocks: list[tuple[int, list[str]]], fmt: str) -> list[_Cue]:
    cues = []
    for start, block in blocks:
        if fmt == "vtt" and VTT_OTHER_BLOCKS.match(block[0]):
            if cues and not block[0].startswith("NOTE"):
                raise malformed(start, f"a {block[0].split()[0]} block must come before the first cue")
            continue
        if fmt == "srt" and not block[0].strip().isdigit():
            raise malformed(start, "expected the cue number of an SRT cue")
        at = 0 if "-->" in block[0] and fmt == "vtt" else 1      # else after an identifier / number
        if len(block) <= at or "-->" not in block[at]:
            raise malformed(start + (1 if fmt == "srt" else 0), f"expected cue timings '{TIMINGS_HINT[fmt]}'")
        for i, line in enumerate(block[at + 1:], at + 1):
            if "-->" in line:
                raise malformed(start + i, "'-->' in a cue's text (is a blank line missing before this cue?)")
        cues.append(_Cue(start + at, block[at], block))
    return cues


def _read(lines: list[str], fmt: str) -> webvtt.WebVTT:
    """webvtt-py's reading; SRT is read like WebVTT by the library's SRT reader."""
    if fmt == "srt":
        return webvtt.WebVTT.from_buffer(lines, format="srt")
    return webvtt.WebVTT.from_buffer(lines, strict=True)


def _find_bad(cues: list[_Cue], header: list[str], fmt: str, error: Exception) -> APIError:
    """The library refused the file: read cue by cue to name the line."""
    for cue in cues:
        unreadable = malformed(cue.line, f"unreadable cue timings '{cue.timings[:80]}' (they are written "
                                         f"'{TIMINGS_HINT[fmt]}')")
        try:
            got = _read(header + cue.lines, fmt)
        except MalformedCaptionError as exc:
            return malformed(cue.line, str(exc)[:200]) if "setting" in str(exc) else unreadable
        except MalformedFileError:
            return unreadable
        if len(got.captions) != 1:
            return unreadable
    return malformed(1, str(error)[:200])


def parse(raw: bytes, filename: str, max_cues: int) -> CaptionTrack:
    """The checked track or a 400: caption_encoding, caption_format, caption_malformed (naming
    the line), caption_empty or too_many_cues."""
    text = _text(raw)
    fmt = detect_format(text, filename)
    lines = text.split("\n")
    blocks = _blocks(lines)
    header: list[str] = []
    if fmt == "vtt":
        if not VTT_HEADER.match(lines[0]):
            raise malformed(1, "a WebVTT file starts with the line 'WEBVTT'")
        header = [*blocks.pop(0)[1], ""]
    cues = _cues(blocks, fmt)
    if not cues:
        raise APIError(400, "caption_empty", "the file has no cues")
    if len(cues) > max_cues:
        raise APIError(400, "too_many_cues", f"the file has {len(cues)} cues; the limit is {max_cues}")
    try:
        track = _read(lines, fmt)
    except (MalformedCaptionError, MalformedFileError) as exc:
        raise _find_bad(cues, header, fmt, exc)
    if len(track.captions) != len(cues):
        raise _find_bad(cues, header, fmt, ValueError("unreadable cue"))
    for cue, caption in zip(cues, track.captions):
        if caption.end_time.in_milliseconds() <= caption.start_time.in_milliseconds():
            raise malformed(cue.line, f"the cue ends ({caption.end}) before it starts ({caption.start})")
    return CaptionTrack(track.content, len(cues), fmt)
