"""Is it a decodable video? ffprobe reads the stored original straight from file-svc over
HTTP with Range requests (no local copy), then ffmpeg decodes the first frame."""
from __future__ import annotations

import json
import logging
import subprocess

from svcommon.filestore import FileStore

log = logging.getLogger("upload_svc.probe")

# Demuxers that only carry still images: a renamed .png/.jpg is not a video.
IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "gif", "webp_pipe", "bmp_pipe", "tiff_pipe", "svg_pipe")


class NotAVideo(Exception):
    """``str(exc)`` is the reason shown to the uploader."""


def _run(argv: list[str], timeout: int) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise NotAVideo(f"the file could not be analysed within {timeout} s")


def probe(fs: FileStore, key: str, timeout: int = 120) -> dict:
    url = fs.url(key)
    # The service token is short-lived and only valid for file-svc on the internal network.
    headers = f"Authorization: Bearer {fs.token()}\r\n"
    res = _run(["ffprobe", "-v", "error", "-headers", headers, "-show_format", "-show_streams",
                "-of", "json", url], timeout)
    if res.returncode != 0:
        log.info("ffprobe refused file", extra={"key": key, "stderr": res.stderr.decode(errors="replace")[-300:]})
        raise NotAVideo("this file is not a video we can read (unknown format, or truncated/corrupt data)")
    data = json.loads(res.stdout or b"{}")
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    if video is None:
        raise NotAVideo("this file has no video stream")
    if fmt.get("format_name") in IMAGE_FORMATS:
        raise NotAVideo("this file is a still image, not a video")
    try:
        duration = float(fmt.get("duration") or video.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise NotAVideo("this video has no duration (not a playable video)")
    res = _run(["ffmpeg", "-nostdin", "-v", "error", "-headers", headers, "-i", url, "-map", "0:v:0",
                "-frames:v", "1", "-f", "null", "-"], timeout)
    if res.returncode != 0:
        log.info("ffmpeg could not decode", extra={"key": key, "stderr": res.stderr.decode(errors="replace")[-300:]})
        raise NotAVideo("the video stream cannot be decoded (corrupt or unsupported codec)")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return {"duration": round(duration, 3), "width": int(video.get("width") or 0), "height": int(video.get("height") or 0),
            "video_codec": str(video.get("codec_name", ""))[:32],
            "audio_codec": str(audio.get("codec_name", ""))[:32] if audio else None,
            "container": str(fmt.get("format_name", ""))[:64]}
