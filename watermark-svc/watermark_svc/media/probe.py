"""Probe an uploaded file with ffprobe and decide whether it is a usable video.

ffprobe alone trusts the container header, so a file cut short by a failed upload
(or garbage with a plausible header) can look fine; we also decode a little of
the start and of the end to be sure frames really come out.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction

from .errors import InvalidMedia

FFPROBE = os.environ.get("FFPROBE", "ffprobe")
FFMPEG = os.environ.get("FFMPEG", "ffmpeg")

PROBE_TIMEOUT_S = 60
DECODE_CHECK_S = 1.0          # how much video to decode at each end of the file
MAX_FPS = Fraction(120)       # above this the container's rate is nonsense

# Container names ffprobe reports for single still images; not videos for us.
_STILL_IMAGE_FORMATS = ("image2", "_pipe", "gif", "webp")


@dataclass(frozen=True)
class ProbeResult:
    width: int                    # decoded frame size, after applying rotation metadata
    height: int
    display_aspect: Fraction      # width/height as it should be shown (includes SAR)
    fps: Fraction
    duration_s: float
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    bitrate: int | None           # whole-file bits per second, if known
    rotation: int = 0             # degrees the player must rotate (ffmpeg autorotates)
    pix_fmt: str | None = None
    frame_count_estimate: int = 0


def probe(path: str | os.PathLike) -> ProbeResult:
    """Return the facts we need about `path`, or raise InvalidMedia saying why not."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidMedia("file does not exist")
    if os.path.getsize(path) == 0:
        raise InvalidMedia("file is empty (0 bytes)")

    info = _ffprobe_json(path)
    fmt = info.get("format") or {}
    streams = info.get("streams") or []
    format_name = fmt.get("format_name", "")
    video = _pick_video_stream(streams)
    if video is None:
        raise InvalidMedia("the file contains no video stream")
    if any(tag in format_name for tag in _STILL_IMAGE_FORMATS):
        raise InvalidMedia(f"the file is a still image ({format_name}), not a video")

    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise InvalidMedia("the video stream has no picture size (undecodable)")

    rotation = _rotation(video)
    aspect = _display_aspect(video, width, height)
    if rotation % 180:
        width, height, aspect = height, width, 1 / aspect

    fps = _frame_rate(video)
    duration = _duration(fmt, video)
    if duration <= 0:
        raise InvalidMedia("the video has zero duration")

    _check_decodes(path, 0.0, "the start of the video cannot be decoded")
    if duration > 2 * DECODE_CHECK_S:
        _check_decodes(path, max(0.0, duration - DECODE_CHECK_S),
                       "the end of the video cannot be decoded (the file is probably truncated)")

    bitrate = fmt.get("bit_rate")
    return ProbeResult(
        width=width, height=height, display_aspect=aspect, fps=fps,
        duration_s=duration, video_codec=video.get("codec_name", "unknown"),
        has_audio=audio is not None,
        audio_codec=audio.get("codec_name") if audio else None,
        bitrate=int(bitrate) if bitrate and str(bitrate).isdigit() else None,
        rotation=rotation, pix_fmt=video.get("pix_fmt"),
        frame_count_estimate=int(round(duration * fps)),
    )


def _ffprobe_json(path: str) -> dict:
    argv = [FFPROBE, "-v", "error", "-print_format", "json",
            "-show_format", "-show_streams", path]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise InvalidMedia("probing the file timed out") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise InvalidMedia(_explain_ffprobe_error(err, _looks_like_mp4(path)))
    try:
        return json.loads(proc.stdout or b"{}")
    except ValueError:
        raise InvalidMedia("the file could not be analysed as media") from None


def _looks_like_mp4(path: str) -> bool:
    """ISO-BMFF files start with a box header such as ....ftyp."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


def _explain_ffprobe_error(stderr: str, mp4_header: bool) -> str:
    low = stderr.lower()
    if "moov atom not found" in low:
        # ffprobe picks the MP4 demuxer from the ".mp4" name even for a text file.
        if mp4_header:
            return "the file is truncated or incomplete (its MP4 index is missing)"
        return "not a recognised video file (the content is not a media container)"
    if "invalid data found" in low or "could not find codec parameters" in low:
        return "not a recognised video file (the content is not a media container)"
    if "end of file" in low:
        return "the file is truncated"
    return "not a recognised video file"


def _pick_video_stream(streams: list[dict]) -> dict | None:
    # Cover art in audio files shows up as a one-picture "video" stream; skip it.
    for s in streams:
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic"):
            return s
    return None


def _parse_ratio(text: str | None) -> Fraction | None:
    if not text or ":" not in text and "/" not in text:
        return None
    num, _, den = text.replace(":", "/").partition("/")
    try:
        n, d = int(num), int(den)
    except ValueError:
        return None
    return Fraction(n, d) if n > 0 and d > 0 else None


def _display_aspect(video: dict, width: int, height: int) -> Fraction:
    dar = _parse_ratio(video.get("display_aspect_ratio"))
    if dar is None:
        sar = _parse_ratio(video.get("sample_aspect_ratio")) or Fraction(1)
        dar = Fraction(width, height) * sar
    return dar


def _rotation(video: dict) -> int:
    for side in video.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    rotate = (video.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate and rotate.lstrip("-").isdigit() else 0


def _frame_rate(video: dict) -> Fraction:
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _parse_ratio(video.get(key))
        if rate is not None and Fraction(1) <= rate <= MAX_FPS:
            return rate
    raise InvalidMedia("the video has no usable frame rate")


def _duration(fmt: dict, video: dict) -> float:
    for value in (video.get("duration"), fmt.get("duration")):
        try:
            d = float(value)
        except (TypeError, ValueError):
            continue
        if d > 0:
            return d
    return 0.0


def _check_decodes(path: str, start_s: float, reason: str) -> None:
    """Decode DECODE_CHECK_S of video from start_s into tiny grey frames and count them."""
    argv = [FFMPEG, "-nostdin", "-v", "error"]
    if start_s > 0:
        argv += ["-ss", f"{start_s:.3f}"]
    argv += ["-i", path, "-t", f"{DECODE_CHECK_S}", "-map", "0:v:0", "-an", "-sn", "-dn",
             "-vf", "scale=16:16", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise InvalidMedia(reason + " (decoding timed out)") from None
    frames = len(proc.stdout) // 256
    if proc.returncode != 0 or frames == 0:
        raise InvalidMedia(reason)
