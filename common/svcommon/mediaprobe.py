"""The one probe: is this file a video we accept, and what will we publish from it?

upload-svc (verdict at upload) and the media worker (verdict before processing) both
call ``probe``, so the two can never disagree. The rules, in order:

1. the container is sniffed from its first bytes and forced (``svcommon.ffmpeg``);
2. header facts from ffprobe: at most ``max_streams`` streams, a video stream (the first
   that is not a cover picture: ``svcommon.ffmpeg.VIDEO_STREAM``) in a codec that decodes,
   whose picture fits ``max_width`` x ``max_height`` and ``max_pixels``, a frame rate up to
   ``max_fps`` (any above 0: a slideshow's pictures are repeated at a standard rate); the
   sound published is the decodable audio stream marked default, else the first that
   decodes (``audio_index``), of the video's programme where the file has programmes (a
   broadcast multiplex), and audio that none decodes is refused;
3. every packet is listed (demux only, no decode): the published duration runs from the
   file's start time (every decode's origin; sound may start before the picture) to the
   end of the last video frame — what the pipeline's constant-rate conversion turns into
   frames; a stretch without a new video frame over ``max_gap_s`` (the last frame's own
   showing counts as one) is refused (the
   constant-rate output repeats the last frame through it: a screen recording holds no
   frames while nothing moves, but hours of nothing are no video); a video or audio
   timestamp going back more than MAX_RESTART_S (recordings joined end to end, a
   broadcast capture across a clock reset) is refused: every decode is timed from the
   file's start, so the part after the reset would be dropped; an index promising more
   than the data holds, or a packet lying beyond the end of the file, is a truncated
   file; the frame rate is the header's average unless the frames mostly come more than
   5 % faster (``_motion_rate``);
4. the published duration must be within ``max_duration_s``;
5. the first and the last second must decode (the last from no later than the last frame).

``check_publishable`` adds what only publishing needs (upload-svc and the worker call
``probe_to_publish``; forensic suspects, which may be small or short, are only probed): a picture of at
least ``min_pixels`` and MIN_SIDE_PX a side, shown no wider or taller than
MAX_DISPLAY_ASPECT:1, more than one frame, and sound that does not go on more than
MAX_AUDIO_OVERHANG_S past the last picture (the published audio is cut, or padded with
silence, to the video's length).

Seeking: ffmpeg's ``-ss`` counts from the file's start time, and lands on a key frame only
where the container indexes them (MP4/MOV, Matroska, AVI). In MPEG-TS and MPEG-PS it lands
on whatever packet is near, and the frames up to the next key frame cannot be decoded; FLV,
ASF and Ogg are treated alike (their indexes are optional or coarse). A seek that must give
exactly the frames a decode from the start gives (a chunk) aims ``seek_margin_s`` early and
drops what precedes the wanted instant (``svcommon.ffmpeg.seek_args``/``seek_exact``,
``_seek_margin``); such a file whose key frames are more than MAX_SEEK_MARGIN_S apart is
refused.

Width and height are reported as displayed (rotation applied), as published.
Each refusal is ``MediaRejected`` with a reason naming the rule or the limit.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction

from . import ffmpeg as ff
from .medialimits import MEDIA_SETTINGS, MediaLimits, MediaRejected
from .params import ascii_uint

__all__ = ["MEDIA_SETTINGS", "MediaLimits", "MediaRejected", "ProbeResult", "check_publishable", "probe",
           "probe_to_publish"]
DECODE_CHECK_S = 1.0
# Containers whose seeks land on a key frame (their index marks them); any other's need a margin.
KEY_FRAME_SEEK_CONTAINERS = ("mov", "matroska", "avi")
# A longer key-frame interval in any other would make every chunk of the video decode that
# much more (a single key frame: the whole film per chunk).
MAX_SEEK_MARGIN_S = 30.0
INTERLACED_FIELD_ORDERS = ("tt", "bb", "tb", "bt")     # ffprobe's field_order of field-coded video
# A decode timed from the file's start drops whatever comes after its timestamps went back:
# a step back of more than this is refused rather than published with that part missing.
MAX_RESTART_S = 0.5
# Publishing (check_publishable): a narrower strip than this carries no traceable pattern
# whatever its area; sound past the last picture beyond this would be cut from the video.
MIN_SIDE_PX = 32
MAX_AUDIO_OVERHANG_S = 2.0
# Widest (or tallest) shape shown: 32:9 screens and 2:1 panoramas pass; a header's pixel
# aspect of 100:1 made a 320x240 video's ladder 1920x14 ... 640x4.
MAX_DISPLAY_ASPECT = 8
HDR_TRANSFERS = {"arib-std-b67": "hlg", "smpte2084": "pq"}   # ffprobe's color_transfer names
# WebM keeps a VP8/VP9 picture's alpha beside the picture (the track's AlphaMode, ffprobe's
# alpha_mode tag), which ffmpeg's own decoders skip: libvpx's decode it.
ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


@dataclass(frozen=True)
class ProbeResult:
    width: int                    # as displayed: rotation applied
    height: int
    display_aspect: Fraction      # width/height as it should be shown (includes SAR)
    fps: Fraction
    duration_s: float             # published: from the file's start to the end of the last frame
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    bitrate: int | None           # whole-file bits per second, if known
    rotation: int = 0             # degrees the player must rotate (ffmpeg autorotates)
    pix_fmt: str | None = None
    frame_count_estimate: int = 0
    container: str = ""           # the forced demuxer
    streams: int = 0
    max_gap_s: float = 0.0
    seek_margin_s: float = 0.0    # how early a seek must aim (module doc, "Seeking")
    seek_lead_s: float = 0.0      # the most video an exact seek decodes before its target
    interlaced: bool = False      # coded as fields (broadcast, camcorders): to deinterlace
    color: str = ""               # "hlg", "pq" (HDR), "bt2020" (wide gamut), "": BT.709 or untagged
    video_frames: int = 0         # video packets in the file
    audio_overhang_s: float = 0.0  # how long the sound goes on after the last picture
    audio_index: int | None = None  # the stream the sound is published from (None: the first audio stream)
    video_decoder: str = ""       # the decoder that reads the picture whole (_decoder), "": ffmpeg's choice

    def summary(self) -> dict:
        """The facts upload-svc records on the video row."""
        return {"duration": round(self.duration_s, 3), "width": self.width, "height": self.height,
                "video_codec": self.video_codec[:32], "audio_codec": (self.audio_codec or "")[:32] or None,
                "container": self.container[:64]}


def probe(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    limits = limits or MediaLimits()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaRejected("file does not exist")
    size = os.path.getsize(path)
    if size == 0:
        raise MediaRejected("file is empty (0 bytes)")
    try:
        demuxer = ff.sniff_file(path)
    except ff.UnsupportedContainer as exc:
        raise MediaRejected(str(exc)) from None
    bounds = limits.probe_bounds()
    info = _ffprobe_json(path, demuxer, bounds)
    fmt, streams = info.get("format") or {}, info.get("streams") or []
    if len(streams) > limits.max_streams:
        raise MediaRejected(f"the file has {len(streams)} streams; at most {limits.max_streams} are accepted",
                            "MEDIA_MAX_STREAMS")
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    if video is None:
        raise MediaRejected("the file contains no video stream")
    if not _decodable(video):
        raise MediaRejected(f"the video's codec is not one that can be decoded here (its tag: {_tag(video)}); "
                            "re-encode it to H.264, HEVC, VP9 or AV1")
    # Animated-image codecs; PNG frames in a MOV/MKV/AVI are a video codec (QuickTime PNG,
    # motion graphics with alpha), and were refused as "an image format" with these.
    if video.get("codec_name") in ("gif", "apng", "webp"):
        raise MediaRejected("the video stream is an image format, not a video (animated images are not accepted)")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaRejected("the video stream has no picture size (undecodable)")
    _check_picture(width, height, limits)
    fps = _frame_rate(video, limits)
    audio = _pick_audio(streams, _programme_of(info, video))
    audio_index = int(audio["index"]) if audio else None
    scan = _scan_packets(path, demuxer, int(video["index"]), audio_index, size, bounds)
    if scan.restart is not None:
        kind, before, after = scan.restart
        raise MediaRejected(f"the {kind}'s timestamps go back from {before:.1f} s to {after:.1f} s partway through "
                            "(recordings joined end to end?); remux it to MP4 first (ffmpeg -i <file> -c copy "
                            "out.mp4 numbers them afresh) or upload the recordings one by one")
    # Every decode's clock starts here (``ffmpeg.from_file_start``), ffmpeg's start time:
    # the earliest packet of any stream.
    origin = _num(fmt.get("start_time"))
    origin = min(scan.all_start, scan.video_start) if origin is None else origin
    duration = _published_duration(scan, fmt, video, origin)
    motion = _motion_rate(scan)
    if motion is not None and motion > fps * Fraction(105, 100):
        # A recording that holds no frames while nothing moves (a screen recorder) averages
        # far less than the rate it moves at: published at its average it lost frames in
        # every motion (2 s at 30 fps, 12 s still, 2 s at 30 fps came out at 10 fps).
        fps = _within_limit(motion, limits)
    if scan.max_gap > limits.max_gap_s:
        raise MediaRejected(f"the video holds no frame for {scan.max_gap:.1f} s (after "
                            f"{scan.max_gap_at - origin:.1f} s); at most "
                            f"{limits.max_gap_s:g} s without a frame are accepted", "MEDIA_MAX_GAP_SECONDS")
    if duration > limits.max_duration_s:
        raise MediaRejected(f"the video lasts {duration:.0f} s; at most {limits.max_duration_s:.0f} s are accepted",
                            "MEDIA_MAX_DURATION_SECONDS")
    margin = _seek_margin(scan, demuxer, fps)
    decoder = _decoder(video)       # the checks read the picture as processing will
    _check_decodes(path, demuxer, 0.0, 0.0, "the start of the video cannot be decoded", bounds, decoder)
    if duration > 2 * DECODE_CHECK_S:
        # -ss counts from the file's start time (an MPEG-TS starts at ~1.4 s, a cut or a
        # capture anywhere): the video's last second is this far into the file. The check
        # keeps the frames from its start on, so it starts no later than the last frame,
        # which may show for longer than a second (a recording that ends on a still screen).
        end_check = min(scan.video_end - DECODE_CHECK_S, scan.last_shown) - origin
        _check_decodes(path, demuxer, max(0.0, end_check), margin,
                       "the end of the video cannot be decoded (the file is probably truncated)", bounds, decoder)
    rotation = _rotation(video)
    aspect = _display_aspect(video, width, height)
    if rotation % 180:
        width, height, aspect = height, width, 1 / aspect
    bitrate = str(fmt.get("bit_rate") or "")
    return ProbeResult(width=width, height=height, display_aspect=aspect, fps=fps, duration_s=duration,
                       video_codec=str(video.get("codec_name", "unknown")), has_audio=audio is not None,
                       audio_codec=audio.get("codec_name") if audio else None,
                       bitrate=ascii_uint(bitrate), rotation=rotation,
                       pix_fmt=video.get("pix_fmt"), frame_count_estimate=int(round(duration * fps)),
                       container=demuxer, streams=len(streams), max_gap_s=scan.max_gap, seek_margin_s=margin,
                       seek_lead_s=_seek_lead(scan, demuxer, margin),
                       interlaced=video.get("field_order") in INTERLACED_FIELD_ORDERS, color=_color(video),
                       video_frames=scan.video_packets, audio_index=audio_index, video_decoder=decoder,
                       audio_overhang_s=max(0.0, round(scan.audio_end - scan.video_end, 6)) if audio else 0.0)


def probe_to_publish(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    """The verdict on a video to publish (upload-svc's and the worker's): ``probe``, then
    ``check_publishable``."""
    info = probe(path, limits)
    check_publishable(info, limits)
    return info


def check_publishable(info: ProbeResult, limits: MediaLimits | None = None) -> None:
    """The rules a video must also meet to be published (module doc); MediaRejected if not."""
    limits = limits or MediaLimits()
    if info.width * info.height < limits.min_pixels:
        example = " (as in 128x72)" if limits.min_pixels == 128 * 72 else ""
        raise MediaRejected(f"the picture is {info.width}x{info.height} ({info.width * info.height} pixels); at least "
                            f"{limits.min_pixels} pixels{example} are needed for the forensic watermark to trace a "
                            "leaked copy", "MEDIA_MIN_PIXELS")
    if min(info.width, info.height) < MIN_SIDE_PX:
        raise MediaRejected(f"the picture is {info.width}x{info.height}; each side must be at least {MIN_SIDE_PX} "
                            "pixels for the forensic watermark to trace a leaked copy")
    aspect = info.display_aspect
    if not Fraction(1, MAX_DISPLAY_ASPECT) <= aspect <= MAX_DISPLAY_ASPECT:
        shape = f"{float(aspect):.1f}:1" if aspect >= 1 else f"1:{float(1 / aspect):.1f}"
        sar = aspect * info.height / info.width
        why = f" (its header makes each pixel {sar.numerator}:{sar.denominator})" if sar != 1 else ""
        raise MediaRejected(f"the picture is {info.width}x{info.height}, shown at {shape}{why}; at most "
                            f"{MAX_DISPLAY_ASPECT}:1 either way is accepted")
    if info.audio_overhang_s > MAX_AUDIO_OVERHANG_S:
        raise MediaRejected(f"the sound goes on {info.audio_overhang_s:.1f} s after the last picture (at "
                            f"{info.duration_s:.1f} s); a video is published as long as its picture, so that sound "
                            "would be lost: make the picture last as long as the sound (a still picture over sound: "
                            "ffmpeg -loop 1 -i <picture> -i <sound> -shortest ...)")
    if info.video_frames < 2:
        raise MediaRejected("the video holds a single frame (a still picture, not a video)")


def _programme_of(info: dict, video: dict) -> set[int] | None:
    """The indexes of the streams in the video's programme, where the file has programmes
    (an MPEG-TS of several channels), else None."""
    for programme in info.get("programs") or []:
        members = {int(s["index"]) for s in programme.get("streams") or [] if "index" in s}
        if int(video["index"]) in members:
            return members
    return None


def _pick_audio(streams: list[dict], programme: set[int] | None = None) -> dict | None:
    """The sound published: the decodable audio stream marked default (a rip's main
    language, where a commentary may come first), else the first that decodes (a broadcast
    capture may carry an undecodable one before it); MediaRejected if none of them does.
    The video's own programme's sound where it lists any (``programme``): a capture of a
    whole broadcast multiplex lists a radio channel's sound before the TV channel's, and it
    was published over the TV channel's picture."""
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    own = [s for s in audios if programme is not None and int(s["index"]) in programme]
    audios = own or audios
    decodable = [s for s in audios if _decodable(s)]
    if audios and not decodable:
        raise MediaRejected(f"the sound's codec is not one that can be decoded here (its tag: {_tag(audios[0])}); "
                            "re-encode the sound to AAC, Opus or MP3, or remove it")
    return next((s for s in decodable if (s.get("disposition") or {}).get("default")), None) or \
        next(iter(decodable), None)


def _decodable(stream: dict) -> bool:
    """ffprobe names the codec of every stream it has a decoder for."""
    return str(stream.get("codec_name") or "unknown") not in ("unknown", "none")


def _tag(stream: dict) -> str:
    return "".join(c for c in str(stream.get("codec_tag_string") or "") if c.isalnum())[:16] or "none"


def _ffprobe_json(path: str, demuxer: str, bounds: ff.Bounds) -> dict:
    argv = ff.base(ff.FFPROBE) + ["-print_format", "json", "-show_format", "-show_streams", "-show_programs",
                                  *ff.input_args(path, demuxer)]
    proc = _run(argv, bounds, "probing the file")
    if proc.returncode != 0:
        raise MediaRejected(_explain(proc.stderr.decode("utf-8", "replace"), proc.returncode, demuxer))
    try:
        return json.loads(proc.stdout or b"{}")
    except ValueError:
        raise MediaRejected("the file could not be analysed as media") from None


def _run(argv: list[str], bounds: ff.Bounds, what: str):
    try:
        return ff.run(argv, bounds)
    except ff.Timeout:
        raise MediaRejected(f"{what} took longer than the {bounds.wall_seconds:.0f} s limit",
                            "PROBE_TIMEOUT_SECONDS") from None


def _explain(stderr: str, rc: int, demuxer: str) -> str:
    bound = ff.exceeded(rc)
    if bound:
        return f"analysing the file exceeded its {bound} limit"
    low = stderr.lower()
    if "moov atom not found" in low:
        return "the file is truncated or incomplete (its MP4 index is missing)"
    if "end of file" in low:
        return "the file is truncated"
    return f"not a recognised video file (the data is not valid {demuxer.upper()})"


def _check_picture(width: int, height: int, limits: MediaLimits) -> None:
    if width > limits.max_width or height > limits.max_height:
        raise MediaRejected(f"the picture is {width}x{height}; at most {limits.max_width}x{limits.max_height} "
                            "is accepted", "MEDIA_MAX_WIDTH" if width > limits.max_width else "MEDIA_MAX_HEIGHT")
    if width * height > limits.max_pixels:
        raise MediaRejected(f"the picture has {width * height} pixels; at most {limits.max_pixels} are accepted",
                            "MEDIA_MAX_PIXELS")


def _parse_ratio(text: str | None) -> Fraction | None:
    if not text or (":" not in text and "/" not in text):
        return None
    num, _, den = text.replace(":", "/").partition("/")
    try:
        n, d = int(num), int(den)
    except ValueError:
        return None
    return Fraction(n, d) if n > 0 and d > 0 else None


def _frame_rate(video: dict, limits: MediaLimits) -> Fraction:
    """The header's rate (its average, else its base rate). Any rate above 0 is usable: a
    slideshow or a time-lapse shows a picture every few seconds (the output repeats it at a
    standard rate; frames further apart than the gap limit are refused by that). It used to
    take at least 1 fps, refusing a 0.5-fps slideshow as having "no usable frame rate"."""
    rate = _parse_ratio(video.get("avg_frame_rate")) or _parse_ratio(video.get("r_frame_rate"))
    if rate is None:
        raise MediaRejected("the video has no usable frame rate")
    return _within_limit(rate, limits)


def _within_limit(rate: Fraction, limits: MediaLimits) -> Fraction:
    if rate > limits.max_fps:
        raise MediaRejected(f"the frame rate is {float(rate):.0f} fps; at most {limits.max_fps:g} fps is accepted",
                            "MEDIA_MAX_FPS")
    return rate


def _display_aspect(video: dict, width: int, height: int) -> Fraction:
    dar = _parse_ratio(video.get("display_aspect_ratio"))
    if dar is None:
        dar = Fraction(width, height) * (_parse_ratio(video.get("sample_aspect_ratio")) or Fraction(1))
    return dar


def _color(video: dict) -> str:
    """The source's colour as tagged: HDR (HLG, PQ), wide-gamut SDR (BT.2020), or "" for
    BT.709 and untagged video (what players assume)."""
    transfer = HDR_TRANSFERS.get(str(video.get("color_transfer") or ""))
    if transfer:
        return transfer
    return "bt2020" if video.get("color_primaries") == "bt2020" else ""


def _decoder(video: dict) -> str:
    """The decoder a video stream is read with where ffmpeg's own would lose part of the
    picture: a WebM VP8/VP9 stream with alpha (motion graphics, a canvas recorded in a
    browser) through libvpx, which returns the alpha that the fit composites over black
    (ffmpeg's vp9 decoder skips it: the transparent parts showed whatever colours they held)."""
    tags = {str(k).lower(): str(v) for k, v in (video.get("tags") or {}).items()}
    return ALPHA_DECODERS.get(str(video.get("codec_name")), "") if tags.get("alpha_mode") == "1" else ""


def _rotation(video: dict) -> int:
    for side in video.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    # A tag the file wrote: "²".isdigit() holds but int("²") raises, so ASCII digits only.
    rotate = str((video.get("tags") or {}).get("rotate") or "")
    degrees = ascii_uint(rotate.removeprefix("-"))
    return 0 if degrees is None else (-degrees if rotate.startswith("-") else degrees) % 360


@dataclass
class _Scan:
    video_packets: int = 0
    video_start: float = float("inf")
    video_end: float = 0.0
    all_start: float = float("inf")
    all_end: float = 0.0
    audio_end: float = 0.0
    max_gap: float = 0.0
    max_gap_at: float = 0.0           # the timestamp the longest gap starts from
    beyond_eof: bool = False
    last_pts: float | None = None
    last_shown: float = float("-inf")  # the latest video frame's timestamp (its picture shows to video_end)
    last_key: float | None = None
    max_key_gap: float = 0.0          # longest run of video without a key frame
    intervals: dict[int, list] = field(default_factory=dict)   # ms -> [count, sum s] (_note_interval)
    last_dts: dict[str, float] = field(default_factory=dict)     # "video"/"audio" -> last decode timestamp
    restart: tuple[str, float, float] | None = None   # ("video"/"audio", from, to): the first step back


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def _scan_packets(path: str, demuxer: str, video_index: int, audio_index: int | None, size: int,
                  bounds: ff.Bounds) -> _Scan:
    """Demux every packet (no decoding) and fold their timing into a _Scan, streaming
    ffprobe's output so a long film costs no memory."""
    argv = ff.base(ff.FFPROBE) + ["-show_entries", "packet=stream_index,pts_time,dts_time,duration_time,size,pos,flags",
                                  "-of", "compact=p=0", *ff.input_args(path, demuxer)]
    scan = _Scan()
    kinds = {str(video_index): "video", **({str(audio_index): "audio"} if audio_index is not None else {})}
    proc = ff.spawn(argv, bounds, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL)
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        ff.kill_group(proc)

    timer = threading.Timer(bounds.wall_seconds, expire)
    timer.start()
    try:
        for line in proc.stdout:
            p = dict(kv.split("=", 1) for kv in line.decode("ascii", "replace").strip().split("|") if "=" in kv)
            t = _num(p.get("pts_time"))
            t = _num(p.get("dts_time")) if t is None else t
            pos, length = _num(p.get("pos")), _num(p.get("size")) or 0
            if pos is not None and pos + length > size:
                scan.beyond_eof = True
            kind = kinds.get(p.get("stream_index"))      # "video", "audio" (the published one) or None
            if kind:
                dts = _num(p.get("dts_time"))
                if kind == "video":
                    _note_interval(scan, scan.last_dts.get(kind), dts)
                _note_restart(scan, kind, dts)
            if t is None:
                continue
            end = t + (_num(p.get("duration_time")) or 0.0)
            scan.all_start, scan.all_end = min(scan.all_start, t), max(scan.all_end, end)
            if kind == "audio":
                scan.audio_end = max(scan.audio_end, end)
            elif kind == "video":
                scan.video_packets += 1
                scan.video_start = min(scan.video_start, t)
                scan.video_end = max(scan.video_end, end)
                if scan.last_pts is not None and t - scan.last_pts > scan.max_gap:
                    scan.max_gap, scan.max_gap_at = t - scan.last_pts, scan.last_pts
                scan.last_pts = t
                scan.last_shown = max(scan.last_shown, t)
                if "K" in p.get("flags", ""):
                    if scan.last_key is not None:
                        scan.max_key_gap = max(scan.max_key_gap, t - scan.last_key)
                    scan.last_key = t
        rc = proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
        if proc.poll() is None:
            ff.kill_group(proc)
            proc.wait()
    if fired.is_set():
        raise MediaRejected(f"reading the file took longer than the {bounds.wall_seconds:.0f} s limit",
                            "PROBE_TIMEOUT_SECONDS")
    if rc != 0:
        bound = ff.exceeded(rc)
        raise MediaRejected(f"reading the file exceeded its {bound} limit" if bound
                            else "the file cannot be read to its end (corrupt or truncated)")
    if scan.video_packets == 0:
        raise MediaRejected("the video stream holds no frames")
    if scan.beyond_eof:
        raise MediaRejected("the file is truncated (its index points past the end of the data)")
    if scan.video_end - scan.last_shown > scan.max_gap:
        # The last picture shows until the video ends: as much a stretch without a new frame
        # as any between two (a screen recording that stops on a still screen), so it counts
        # against the gap limit and into every seek's margin alike.
        scan.max_gap, scan.max_gap_at = scan.video_end - scan.last_shown, scan.last_shown
    return scan


def _note_interval(scan: _Scan, last: float | None, dts: float | None) -> None:
    """Count the video's frame intervals (decode order: they rise by one frame each) by the
    millisecond, with their sum, for _motion_rate; flat memory whatever the length."""
    if last is None or dts is None or not 0 < dts - last < 1.0:
        return
    bucket = scan.intervals.setdefault(round((dts - last) * 1000), [0, 0.0])
    bucket[0] += 1
    bucket[1] += dts - last


def _motion_rate(scan: _Scan) -> Fraction | None:
    """The rate the frames mostly come at: one over the mean of the intervals within a
    millisecond of the commonest (timestamps rounded to the millisecond, as Matroska's,
    alternate 33 and 34 ms at 29.97 fps)."""
    if not scan.intervals:
        return None
    mode = max(scan.intervals, key=lambda ms: scan.intervals[ms][0])
    near = [scan.intervals[ms] for ms in (mode - 1, mode, mode + 1) if ms in scan.intervals]
    count, total = sum(c for c, _ in near), sum(t for _, t in near)
    return Fraction(round(count / total * 1000), 1000) if total > 0 else None


def _note_restart(scan: _Scan, kind: str, dts: float | None) -> None:
    """Record the first decode timestamp that goes back by more than MAX_RESTART_S (a
    demuxer's decode timestamps only ever rise within one recording; presentation ones
    reorder around B-frames, so they are not the ones compared)."""
    if dts is None:
        return
    last = scan.last_dts.get(kind)
    if last is not None and dts < last - MAX_RESTART_S and scan.restart is None:
        scan.restart = (kind, last, dts)
    scan.last_dts[kind] = dts


def _key_frame_gap(scan: _Scan) -> float:
    """The longest stretch of video without a key frame (to the end of the video)."""
    last = scan.last_key if scan.last_key is not None else scan.video_start
    return max(scan.max_key_gap, scan.video_end - last)


def _seek_margin(scan: _Scan, demuxer: str, fps: Fraction) -> float:
    """How early a seek must aim for the frames from an instant on to come out as a decode
    from the start gives them: the frame shown at an instant can be as old as the longest
    gap between frames (and a frame more, for rounding to the output grid); where seeks do
    not land on key frames, the frames up to the next one are lost too, so the longest
    stretch without a key frame (to the end of the video) is added, or refused above
    MAX_SEEK_MARGIN_S. Rounded up to a tenth of a second."""
    need = scan.max_gap + 1 / float(fps)
    if demuxer not in KEY_FRAME_SEEK_CONTAINERS:
        gap = _key_frame_gap(scan)
        if gap > MAX_SEEK_MARGIN_S:
            raise MediaRejected(f"the video's key frames are {gap:.0f} s apart; in {ff.CONTAINER_NAMES[demuxer]} "
                                f"at most {MAX_SEEK_MARGIN_S:.0f} s are accepted (remux it to MP4 or re-encode it)")
        need += gap
    return math.ceil(need * 10) / 10


def _seek_lead(scan: _Scan, demuxer: str, margin: float) -> float:
    """The most video an exact seek decodes before its target: the margin, and where seeks
    land on the key frame before the aim (MP4/MOV, Matroska, AVI), the stretch back to it
    too (in TS/PS the margin holds it already)."""
    lead = margin + (_key_frame_gap(scan) if demuxer in KEY_FRAME_SEEK_CONTAINERS else 0.0)
    return math.ceil(lead * 10) / 10


def _published_duration(scan: _Scan, fmt: dict, video: dict, origin: float) -> float:
    """From the file's start (``origin``: sound may start before the picture, whose first
    frame then shows from the start) to the end of the last frame."""
    span = scan.video_end - scan.video_start
    if span <= 0:
        raise MediaRejected("the video has zero duration")
    # The index (or the header) promises this much; the packets must deliver it.
    claimed = _num(video.get("duration"))
    measured = span
    if claimed is None:
        # The container's duration runs from its first packet, of any stream, to its last.
        claimed, measured = _num(fmt.get("duration")), scan.all_end - min(scan.all_start, scan.all_end)
    if claimed and claimed - measured > max(1.0, 0.05 * claimed):
        raise MediaRejected(f"the file is truncated (its header promises {claimed:.1f} s, "
                            f"the data holds {measured:.1f} s)")
    return round(scan.video_end - origin, 6)


def _check_decodes(path: str, demuxer: str, start_s: float, margin_s: float, reason: str,
                   bounds: ff.Bounds, video_decoder: str = "") -> None:
    """Decode DECODE_CHECK_S of video from start_s into tiny grey frames and count them
    (a seek margin_s early: what precedes start_s is decoded, then dropped)."""
    seek, skip = ff.seek_exact(start_s, margin_s)
    argv = ff.base() + seek + ff.input_args(path, demuxer, video_decoder) + skip
    argv += ["-t", f"{DECODE_CHECK_S}", "-map", ff.VIDEO_STREAM, "-an", "-sn", "-dn",
             "-vf", "scale=16:16", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"]
    try:
        proc = ff.run(argv, bounds)
    except ff.Timeout:
        raise MediaRejected(reason + " (decoding timed out)", "PROBE_TIMEOUT_SECONDS") from None
    if proc.returncode != 0 or len(proc.stdout) // 256 == 0:
        raise MediaRejected(reason)
