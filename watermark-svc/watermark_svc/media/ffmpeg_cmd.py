"""Build ffmpeg argv lists. Pure functions: nothing here runs a process.

Keeping every command in one place makes the encoder settings auditable and lets
the benchmark build the "plain ladder" baseline with exactly the same x264 and
packaging options the watermark pipeline uses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

from svcommon import ffmpeg as ff

from .ladder import Rung, h264_level

AUDIO_KBPS = 128
AUDIO_RATE = 48000
POSTER_QUALITY = 3          # mjpeg qscale: 2 best .. 31 worst
THUMB_WIDTH = 320
STORYBOARD_QUALITY = 5      # mjpeg qscale of storyboard sprites: small tiles, small files
# Field-coded (interlaced) sources: one frame per frame (the frame rate kept, as the
# encoding cost), only frames the decoder flags as interlaced touched. Without it every
# moving edge showed combing (a 1080i broadcast, a camcorder), scaled or not. It runs after
# the fit (fit_filter: field by field for interlaced frames), since bwdif cannot take a new
# size in the graph that KEEP_FILTER_GRAPH keeps.
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=interlaced"
# How far a picture's shape may differ from the output's and still fill it (stretched that
# little): the ladder's even sizes round the source's own shape by up to a few per cent.
FIT_TOLERANCE = 0.05
# HDR and wide-gamut sources to BT.709 SDR, what every rung is encoded and tagged as (and what
# players assume). Without it a phone's HDR video (HLG) came out washed out: its BT.2020 values
# shown as BT.709. HLG converts directly (zimg applies its inverse OETF and system gamma); PQ
# (HDR10, up to thousands of nits) through linear light with a tone curve that keeps what fits
# in SDR as it is and compresses highlights (mobius); BT.2020 SDR needs only its gamut mapped.
# Ending in 8-bit limited-range 4:2:0, as encoded: the detector's gray read of a converted
# original then takes the same luma (from RGB, gray would be full range: a 1.16x gain).
# The input's transfer, primaries and matrix are named (what the probe saw tagged), so a
# frame whose own tags are incomplete still has a conversion path.
TO_BT709 = "t=bt709:p=bt709:m=bt709:r=tv,format=yuv420p"
COLOR_TO_SDR = {
    "hlg": f"zscale=tin=arib-std-b67:pin=bt2020:min=bt2020nc:{TO_BT709}",
    "pq": ("zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
           f"tonemap=tonemap=mobius:desat=0,zscale={TO_BT709}"),
    "bt2020": f"zscale=tin=bt709:pin=bt2020:min=bt2020nc:{TO_BT709}",     # BT.2020's SDR curve is BT.709's
}


def deinterlaced(on: bool) -> str:
    """The deinterlacer (ending in a comma) for a field-coded source, else nothing."""
    return f"{DEINTERLACE}," if on else ""


def fit_filter(width: int, height: int, flags: str, interlaced: bool = False, pix_fmt: str = "yuv420p") -> str:
    """Scale to width x height (square pixels) in pix_fmt, keeping each frame's shape and
    showing transparency as black.

    A picture of the output's shape (within FIT_TOLERANCE) fills it, exactly as a plain
    scale did (the same bytes, the same cost: the expressions are evaluated only when the
    input changes); one of another shape, which a source can switch to mid-stream (an IPTV
    capture's SD advert in an HD channel, a screen recording of a resized window), is
    fitted inside with black bars, where the kept filter graph's scale stretched it to the
    first picture's shape. A picture with alpha (motion graphics: QuickTime PNG or
    Animation, ProRes 4444) is composited over black in the same pass (swscale's
    alphablend, which works where it converts to a format without alpha: hence pix_fmt
    right after it); dropping the alpha showed whatever colours the transparent pixels
    held (a lower third's whole frame of leftovers)."""
    shape = width / height
    same = f"lt(abs(dar/{shape!r}-1)\\,{FIT_TOLERANCE})"
    w = f"if({same}\\,{width}\\,if(gt(dar\\,{shape!r})\\,{width}\\,max(2\\,2*trunc({height}*dar/2))))"
    h = f"if({same}\\,{height}\\,if(gt(dar\\,{shape!r})\\,max(2\\,2*trunc({width}/dar/2))\\,{height}))"
    interl = ":interl=-1" if interlaced else ""
    return (f"scale=w={w}:h={h}:eval=frame:flags={flags}{interl}:alphablend=uniform_color,format={pix_fmt},"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:eval=frame,setsar=1")


# The formats without alpha an HDR or wide-gamut source is fitted into: its own depth and
# chroma kept for its conversion (to_sdr), ffmpeg choosing the closest.
KEEP_DEPTH_FORMATS = "|".join(f"yuv{c}p{d}" for d in ("", "10le", "12le") for c in (420, 422, 444)) \
    + "|gbrp|gbrp10le|gbrp12le"


def picture_format(color: str) -> str:
    """The pixel format(s) a source's frames are fitted into (fit_filter): 8-bit 4:2:0, as
    published, or for an HDR or wide-gamut source its own (KEEP_DEPTH_FORMATS)."""
    return KEEP_DEPTH_FORMATS if to_sdr(color) else "yuv420p"


def to_sdr(color: str) -> str:
    """The filters (ending in a comma) that bring a source of this colour to BT.709 SDR."""
    chain = COLOR_TO_SDR.get(color)
    return f"{chain}," if chain else ""


@dataclass(frozen=True)
class EncodeSettings:
    """Everything that must be identical between the A and B encodes of a rung."""
    fps: Fraction
    frames_per_segment: int      # GOP length: one closed GOP per segment
    preset: str = "fast"
    threads: int = 0             # x264 threads per encoder; 0 = x264's own choice

    @property
    def segment_seconds(self) -> float:
        return float(self.frames_per_segment / self.fps)


# Encoded-but-unpackaged video goes through NUT, not MP4: an MP4 input makes the
# packager write a measured-bitrate "btrt" box into init.mp4, which then differs
# between A and B; NUT carries no bitrate and keeps exact rational timestamps
# (MKV would round them to milliseconds).
_INTERMEDIATE = ["-an", "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "nut"]


def _base() -> list[str]:
    # Every input below goes through svcommon.ffmpeg (sniffed + forced demuxer, file/pipe
    # protocols only): the source is attacker-controlled.
    return ff.base()


def _raw_input(in_w: int, in_h: int, fps: Fraction) -> list[str]:
    return ff.pipe_input_args("rawvideo", ["-pix_fmt", "yuv420p", "-s", f"{in_w}x{in_h}",
                                           "-framerate", _fps(fps)])


def _fps(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def decode_raw_cmd(source: str, width: int, height: int, fps: Fraction,
                   start_frame: int = 0, frame_count: int | None = None,
                   seek_margin_s: float = 0.0, deinterlace: bool = False, color: str = "",
                   threads: int = 0, video_decoder: str = "") -> list[str]:
    """Decode frames [start_frame, start_frame + frame_count) of the constant-rate
    output grid (to the end if frame_count is None) as yuv420p frames on stdout.

    The fps filter makes the frame rate constant (so frame n is at n/fps and
    segment boundaries are frame counts); scaling here to the mezzanine size keeps
    the pipe small for sources bigger than the top rung. ffmpeg autorotates.
    Timestamps count from the file's start in every run (svcommon.ffmpeg.from_file_start:
    else ffmpeg counts from the seek point after a seek, and in a TS or PS from the
    video's own start when it does not seek), and the fps filter's
    start_time puts the first output frame at frame start_frame's time: its grid and its
    choice of frame for each instant are then those of a decode from the start. A chunk
    starts with an accurate input seek (-ss before -i: decode from the key frame before,
    drop what precedes) seek_margin_s before that instant, so the frame shown at it (it
    can be that old: ProbeResult.seek_margin_s) is decoded too, and output frame k of the
    chunk is frame start_frame + k of a decode from the start. Each picture is fitted to
    the size first (fit_filter: its shape kept, alpha over black; a field-coded one field by
    field), then a field-coded source is deinterlaced (DEINTERLACE: a frame from its two
    fields and its neighbours, which the margin decodes too), and an HDR or wide-gamut one
    brought to BT.709 SDR (to_sdr: per frame, at the smaller size). ``threads``: the decoder's threads
    (0: ffmpeg's choice); a chunk job decodes with as many as each of its encoders has
    (X264_THREADS): beside them and the other workers, a frame-threaded decode of a 720p
    H.264 source cost about 15 % more CPU for nothing. ``video_decoder``: the probe's choice
    (JobPlan.video_decoder: libvpx for a WebM picture with alpha).
    """
    at = Fraction(start_frame) / fps
    seek = ff.seek_args(at, seek_margin_s) if start_frame else []
    vf = (f"{fit_filter(width, height, 'bicubic', deinterlace, picture_format(color))},{deinterlaced(deinterlace)}"
          f"{to_sdr(color)}fps={_fps(fps)}:start_time={float(at):.6f},format=yuv420p")
    limit = [] if frame_count is None else ["-frames:v", str(frame_count)]
    decode_threads = ["-threads", str(threads)] if threads else []
    return _base() + [*ff.from_file_start(seek), *ff.KEEP_FILTER_GRAPH, *decode_threads,
                      *ff.input_args(source, video_decoder=video_decoder),
                      "-map", ff.VIDEO_STREAM, "-an", "-sn", "-dn", "-vf", vf, "-fps_mode", "passthrough", *limit,
                      "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]


def x264_args(rung: Rung, s: EncodeSettings) -> list[str]:
    """x264 options shared by every encode of a rung (A, B and the plain baseline)."""
    n = s.frames_per_segment
    args = [
        "-c:v", "libx264", "-preset", s.preset,
        # High profile at the smallest level that fits: every browser and MSE
        # implementation decodes it; codecs string becomes avc1.64XXYY.
        "-profile:v", "high", "-level:v", h264_level(rung.width, rung.height, s.fps, rung.maxrate),
        "-b:v", f"{rung.video_kbps}k", "-maxrate", f"{rung.maxrate}k",
        "-bufsize", f"{rung.bufsize}k",
        # One closed GOP per segment, key frames exactly on segment boundaries,
        # never a scene-cut I-frame elsewhere: A and B (and all rungs) then split
        # at the same frames and any mix of their segments decodes.
        "-g", str(n), "-keyint_min", str(n), "-sc_threshold", "0",
        "-force_key_frames", f"expr:eq(mod(n,{n}),0)", "-flags", "+cgop",
        "-pix_fmt", "yuv420p",
    ]
    if s.threads:
        args += ["-threads", str(s.threads)]
    return args


def _rung_filter(rung: Rung, in_w: int, in_h: int) -> str:
    # setsar=1 even without scaling: the SPS (and so init.mp4) then carries square pixels
    # whether a rung was scaled here or decoded at its own size (the lowest rung's task),
    # so every task's init for a rung is the same bytes.
    if (rung.width, rung.height) == (in_w, in_h):
        return "setsar=1"
    return f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1"


def scale_filter(rung: Rung, in_w: int, in_h: int) -> list[str]:
    return ["-vf", _rung_filter(rung, in_w, in_h)]


def encode_rung_cmd(rung: Rung, in_w: int, in_h: int, s: EncodeSettings,
                    out_path: str) -> list[str]:
    """Encode raw yuv420p frames (in_w x in_h) from stdin to one rung (NUT file)."""
    return _base() + [
        *_raw_input(in_w, in_h, s.fps),
        *scale_filter(rung, in_w, in_h), *x264_args(rung, s),
        *_INTERMEDIATE, out_path,
    ]


def encode_rungs_cmd(rungs: list[Rung], in_w: int, in_h: int, s: EncodeSettings,
                     out_paths: list[str]) -> list[str]:
    """Encode raw yuv420p frames from stdin to several rungs in one ffmpeg.

    One process per variant (instead of one per rung) means each raw frame
    crosses a pipe once per variant, not once per rung: at 720p with three rungs
    that is 2 instead of 6 copies of ~1.4 MB per frame.
    """
    if len(rungs) == 1:
        return encode_rung_cmd(rungs[0], in_w, in_h, s, out_paths[0])
    n = len(rungs)
    chains = [f"[0:v]split={n}" + "".join(f"[m{i}]" for i in range(n))]
    for i, r in enumerate(rungs):
        chains.append(f"[m{i}]{_rung_filter(r, in_w, in_h)}[v{i}]")
    argv = _base() + [*_raw_input(in_w, in_h, s.fps),
                      "-filter_complex", ";".join(chains)]
    for i, (r, out) in enumerate(zip(rungs, out_paths)):
        argv += ["-map", f"[v{i}]", *x264_args(r, s), *_INTERMEDIATE, out]
    return argv


def audio_pcm_cmd(source: str, stream: int | None = None) -> list[str]:
    """The audio's first step (encode_audio_cmd is the second): the probed audio stream
    (``stream``, ProbeResult.audio_index; None: the first) as stereo 48 kHz float PCM in NUT
    on stdout, timed from the file's start, as the video is (decode_raw_cmd).

    Apart because ffmpeg rebuilds an audio filter graph whenever the decoded sound changes
    format (a broadcast capture going from stereo to 5.1 at an advert, recordings at 44.1
    and 48 kHz joined), and a rebuilt graph starts afresh: with aresample's first_pts=0
    here, the part after the change was pushed back by its own start time (3 s of silence
    inserted 3 s in, the rest of the sound out of sync and past the end). Nothing here
    depends on where the stream starts, so a rebuilt graph carries on where the last
    stopped, and the second step gets one unchanging format."""
    audio = "0:a:0" if stream is None else f"0:{int(stream)}"
    return _base() + [*ff.from_file_start([]), *ff.input_args(source), "-map", audio, "-vn", "-sn", "-dn",
                      "-af", "aresample=async=1", "-ac", "2", "-ar", str(AUDIO_RATE), "-c:a", "pcm_f32le",
                      "-map_metadata", "-1", "-f", "nut", "pipe:1"]


def encode_audio_cmd(out_path: str, duration_s: float) -> list[str]:
    """AAC-LC stereo 48 kHz from audio_pcm_cmd's PCM on stdin, done once for all rungs,
    exactly ``duration_s`` long: the video's published length.

    Its timestamps kept (-copyts: from the file's start): audio that starts after the video
    gets silence before it (aresample's first_pts=0), so it stays in sync, where it used to
    start with the video (the packaged stream starts at 0 whatever the source's offset
    was). Sound that ends before the picture is padded with silence (apad): MSE players can
    freeze where one stream ends before the other (dash.js issue 1739). Sound after the
    picture is cut (``-t``; the probe refuses more than a little of it)."""
    return _base() + ["-copyts", *ff.pipe_input_args("nut"),
                      "-af", f"aresample=async=1:first_pts=0,apad=whole_dur={duration_s:.6f}",
                      "-t", f"{duration_s:.6f}", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2",
                      "-ar", str(AUDIO_RATE), "-map_metadata", "-1",
                      "-fflags", "+bitexact", "-f", "mp4", out_path]


def package_cmd(in_path: str, out_dir: str, segment_seconds: float) -> list[str]:
    """Split an encoded file (no re-encode) into CMAF fMP4: init.mp4 + NNNNN.m4s.

    The HLS muxer cuts at the first key frame at or after each multiple of
    segment_seconds; since key frames sit exactly on the boundaries, every
    rendition and variant is cut at the same frames. The playlist it writes is
    only read back for segment durations (real manifests are per session).
    """
    # Our own intermediate: NUT for video, MP4 for audio.
    return _base() + [
        *ff.input_args(in_path, "nut" if in_path.endswith(".nut") else None), "-map", "0", "-c", "copy",
        "-f", "hls", "-hls_time", f"{segment_seconds:.6f}",
        "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments", "-start_number", "0",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", os.path.join(out_dir, "%05d.m4s"),
        "-fflags", "+bitexact", "-flags", "+bitexact",
        os.path.join(out_dir, "index.m3u8"),
    ]


@dataclass(frozen=True)
class Still:
    """One JPEG of the stills (stills_cmd): its size and where it is written."""
    width: int
    height: int
    path: str


def thumb_size(src_w: int, src_h: int) -> tuple[int, int]:
    """The thumbnail's size: THUMB_WIDTH wide, the picture's aspect, even."""
    return THUMB_WIDTH, max(2, int(round(THUMB_WIDTH * src_h / src_w / 2)) * 2)


def stills_cmd(source: str, at_s: float, fps: Fraction, picture: tuple[int, int], stills: list[Still],
               seek_margin_s: float = 0.0, deinterlace: bool = False, color: str = "",
               video_decoder: str = "") -> list[str]:
    """The picture shown at at_s seconds (from the file's start, as every decode counts),
    made as the video's frames are (``picture``: their size), as one JPEG per ``Still``
    (the poster, the thumbnail), from one decode.

    Taken as a chunk's frames are (decode_raw_cmd): a seek seek_margin_s early, then the
    fps filter's first frame at at_s, which is the frame shown then however long ago it
    started. An output ``-ss`` (what this used) keeps only frames that start at or after the
    instant: a recording that ends on a still screen (its last frame showing for seconds,
    past the 10 % mark) gave no poster, and a still stretch gave the frame after it."""
    seek = ff.seek_args(at_s, seek_margin_s)
    fit = fit_filter(*picture, "lanczos", deinterlace, picture_format(color))
    chains = [f"[{ff.VIDEO_STREAM}]{fit},{deinterlaced(deinterlace)}"
              f"fps={_fps(fps)}:start_time={float(at_s):.6f},trim=end_frame=1,"
              f"split={len(stills)}" + "".join(f"[s{i}]" for i in range(len(stills)))]
    for i, still in enumerate(stills):
        chains.append(f"[s{i}]scale={still.width}:{still.height}:flags=lanczos,setsar=1,"
                      f"{to_sdr(color)}format=yuvj420p[j{i}]")
    argv = _base() + [*ff.from_file_start(seek), *ff.KEEP_FILTER_GRAPH,
                      *ff.input_args(source, video_decoder=video_decoder),
                      "-filter_complex", ";".join(chains)]
    for i, still in enumerate(stills):
        argv += ["-map", f"[j{i}]", "-frames:v", "1", "-q:v", str(POSTER_QUALITY), "-update", "1", "-y", still.path]
    return argv


def storyboard_cmd(source: str, interval_s: int, tiles: int, tile_w: int, tile_h: int, columns: int, rows: int,
                   out_pattern: str, color: str = "", video_decoder: str = "") -> list[str]:
    """Seek-preview sprites (svcommon.storyboards): the frame at every ``interval_s`` seconds
    from 0 (the fps filter's grid anchored at 0; it keeps the last frame of each slot, so
    round=up makes that the frame at the tick, not up to half an interval after it), the
    first ``tiles`` of them, each scaled to
    a tile and laid out ``columns`` x ``rows`` per JPEG (the tile filter pads the last one),
    written as ``out_pattern`` numbered from 1. One decode of the source; passthrough so the
    image muxer writes each sprite once. An HDR source's tiles are converted as the video is."""
    vf = (f"fps=1/{interval_s}:start_time=0:round=up,trim=end_frame={tiles},"
          f"{fit_filter(tile_w, tile_h, 'bilinear', pix_fmt=picture_format(color))},{to_sdr(color)}"
          f"tile={columns}x{rows},format=yuvj420p")
    return _base() + [*ff.KEEP_FILTER_GRAPH, *ff.input_args(source, video_decoder=video_decoder),
                      "-map", ff.VIDEO_STREAM, "-an", "-sn", "-dn",
                      "-vf", vf, "-fps_mode", "passthrough", "-q:v", str(STORYBOARD_QUALITY), "-start_number", "1",
                      "-f", "image2", "-y", out_pattern]


def plain_ladder_cmd(source: str, rungs: list[Rung], mezz_w: int, mezz_h: int,
                     s: EncodeSettings, out_paths: list[str]) -> list[str]:
    """Baseline for the benchmark: one decode, split, same scale + x264 per rung."""
    n = len(rungs)
    chains = [f"[{ff.VIDEO_STREAM}]{fit_filter(mezz_w, mezz_h, 'bicubic')},"
              f"fps={_fps(s.fps)},format=yuv420p,split={n}" + "".join(f"[m{i}]" for i in range(n))]
    for i, r in enumerate(rungs):
        chains.append(f"[m{i}]{_rung_filter(r, mezz_w, mezz_h)}[v{i}]")
    argv = _base() + [*ff.KEEP_FILTER_GRAPH, *ff.input_args(source), "-filter_complex", ";".join(chains)]
    for i, (r, out) in enumerate(zip(rungs, out_paths)):
        argv += ["-map", f"[v{i}]", *x264_args(r, s), *_INTERMEDIATE, out]
    return argv
