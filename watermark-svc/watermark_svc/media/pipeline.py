"""Process one uploaded video into the watermarked A/B CMAF ladder: the chunked path
(chunks.py) run in one process, the same tasks the queue hands to many workers.

Steps (reported through `progress`): probe -> audio -> encode (chunk after chunk:
decode the chunk once, watermark, encode every rung twice, package with global segment
numbers) -> thumbnails. Everything is built in a hidden staging directory next to
out_dir and moved into place only when complete, so a failure never leaves partial
outputs behind.

Output layout:
    video/{rung}/init.mp4            shared by A and B and by every chunk (verified)
    video/{rung}/{a,b}/{i:05d}.m4s   segment i of variant A / B
    audio/init.mp4, audio/{i:05d}.m4s
    poster.jpg, thumb.jpg
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from svcommon import codeword

from . import ffmpeg_cmd
from .chunks import SEGMENTS_PER_CHUNK, Chunk, ChunkResult, encode_audio, encode_chunk, plan_chunks
from .errors import InvalidMedia, LimitExceeded, MediaError, ProcessingError
from .ffmpeg_cmd import EncodeSettings
from .ladder import Rung
from .plan import JobPlan, plan_job
from .probe import MediaLimits, ProbeResult, probe_to_publish
from .procs import ProcessGroup, run_checked
from .wmpattern import RAMP_FRAMES, SIGMA_AT_1080P

WATERMARK_SCHEME = "ab-luma-blurnoise-v1"
DEFAULT_PRESET = "fast"           # the X264_PRESET setting's default; the worker passes its config
POSTER_AT_FRACTION = 0.1          # 10% in: past fades from black, still early
STILL_TIMEOUT_S = 120

# Progress ranges per step (percent).
_P_AUDIO, _P_ENCODE, _P_THUMBS = 1, (2, 96), 97

Progress = Callable[[int, str], None]


def process(source_path: str | os.PathLike, out_dir: str | os.PathLike, video_id: str,
            secret: bytes, *, segment_seconds: float = 2, strength: float = 1.0,
            progress: Progress = lambda pct, step: None,
            ladder: list[Rung] | None = None, preset: str | None = None,
            x264_threads: int = 0, fan_out: str = "per-variant",
            segments_per_chunk: int = SEGMENTS_PER_CHUNK,
            limits: MediaLimits | None = None, group_ready: Callable[[ProcessGroup], None] | None = None) -> dict:
    """Build the full A/B ladder for `source_path` in `out_dir`; return its metadata.

    Raises InvalidMedia for inputs that are not usable videos, ProcessingError if
    an ffmpeg step fails or exceeds its bounds (limits.work_bounds of the probed
    duration). out_dir must not exist or be empty. group_ready receives the process
    group before any child starts, so a caller may cancel the job from another thread.
    """
    limits = limits or MediaLimits()
    source = os.fspath(source_path)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MediaError(f"output directory {out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    group = ProcessGroup(staging / "work" / "logs", limits.probe_bounds())
    if group_ready:
        group_ready(group)
    started = time.monotonic()
    try:
        progress(0, "probe")
        info = probe_to_publish(source, limits)
        group.arm(limits.work_bounds(info.duration_s))
        plan = plan_job(info, segment_seconds, ladder)
        settings = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment,
                                  preset=preset or DEFAULT_PRESET, threads=x264_threads)
        progress(_P_AUDIO, "audio")
        audio = encode_audio(source, staging, info.duration_s, group, info.audio_index) if info.has_audio else None
        chunks = plan_chunks(plan, info.duration_s, segments_per_chunk)
        on_frame = frame_guard(info, plan, lambda n: progress(n, "encode"), _P_ENCODE)
        results = [encode_chunk(source, plan, settings, secret, video_id, strength, plan.rungs,
                                c, staging, group, on_frame, fan_out) for c in chunks]
        progress(_P_THUMBS, "thumbnails")
        make_stills(source, info, plan, staging, group)
        meta = assemble_metadata(video_id, info, plan, settings, strength, chunks, results,
                                 audio, time.monotonic() - started)
        group.kill_all()            # all exited by now; closes their pipes
        shutil.rmtree(staging / "work")
        _publish(staging, out)
    except BaseException as exc:
        group.kill_all()
        shutil.rmtree(staging, ignore_errors=True)
        if group.cancelled and isinstance(exc, MediaError) and not isinstance(exc, InvalidMedia):
            # Whatever broke first (a pipe, a short frame) broke because we killed the group.
            raise (LimitExceeded if group.over_time else ProcessingError)("process", group.cancelled) from exc
        raise
    progress(100, "done")
    return meta


def frame_guard(info: ProbeResult, plan: JobPlan, report: Callable[[int], None],
                span: tuple[int, int] = (0, 100)) -> Callable[[int], None]:
    """on_frame for the encoders: reports percent of the expected frames within span, and
    refuses a timeline that produces far more frames than the probed duration allows."""
    expected = max(1, int(info.duration_s * plan.fps))
    # The probe measured the duration from the packets; the constant-rate conversion may
    # add a frame or two at the ends, never more. Anything beyond is a crafted timeline
    # (duplicated frames filling a gap): stop at once instead of encoding for hours.
    frame_cap = int(expected * 1.02) + 2 * int(plan.fps) + 2
    lo, hi = span
    last = [lo]

    def on_frame(n: int) -> None:
        if n > frame_cap:
            raise InvalidMedia(f"the video produces more than {frame_cap} frames, but its "
                               f"{info.duration_s:.1f} s at {float(plan.fps):g} fps allow {expected} "
                               "(broken or crafted timestamps)")
        pct = lo + (hi - lo) * min(n, expected) // expected
        if pct != last[0]:
            last[0] = pct
            report(pct)
    return on_frame


def make_stills(source: str, info: ProbeResult, plan: JobPlan, staging: Path,
                group: ProcessGroup) -> None:
    at = info.duration_s * POSTER_AT_FRACTION
    stills = [ffmpeg_cmd.Still(plan.mezz_width, plan.mezz_height, str(staging / "poster.jpg")),
              ffmpeg_cmd.Still(*ffmpeg_cmd.thumb_size(plan.mezz_width, plan.mezz_height), str(staging / "thumb.jpg"))]
    run_checked(group, "stills", ffmpeg_cmd.stills_cmd(
        source, at, plan.fps, (plan.mezz_width, plan.mezz_height), stills, plan.seek_margin_s, plan.deinterlace,
        plan.color, plan.video_decoder),
        "thumbnails", STILL_TIMEOUT_S)
    for name in ("poster.jpg", "thumb.jpg"):
        if not (staging / name).is_file() or (staging / name).stat().st_size == 0:
            raise ProcessingError("thumbnails", f"{name} was not produced")


def assemble_metadata(video_id: str, info: ProbeResult, plan: JobPlan, settings: EncodeSettings,
                      strength: float, chunks: Sequence[Chunk], results: Sequence[ChunkResult],
                      audio: dict | None, elapsed: float) -> dict:
    """The video's metadata from its chunk results (any order, rungs possibly done by
    separate tasks). Only complete rungs are listed: one whose every chunk is done."""
    by_chunk: dict[int, list[ChunkResult]] = {}
    for res in results:
        by_chunk.setdefault(res.chunk.index, []).append(res)
    if sorted(by_chunk) != [c.index for c in chunks]:
        raise ProcessingError("assemble", "not every chunk has been encoded")
    durations: list[float] = []
    for c in chunks:
        ds = [res.durations for res in by_chunk[c.index]]
        if any(len(d) != len(ds[0]) or any(abs(x - y) > 1e-3 for x, y in zip(d, ds[0])) for d in ds):
            raise ProcessingError("assemble", f"chunk {c.index}: segments not aligned across rungs")
        durations += ds[0]
    renditions = []
    for r in plan.rungs:
        parts = [next((res.rungs[r.name] for res in by_chunk[c.index] if r.name in res.rungs), None)
                 for c in chunks]
        if any(p is None for p in parts):
            continue                 # still encoding somewhere: not listed yet
        sizes = {v: [s for p in parts for s in p.sizes[v]] for v in ("a", "b")}
        peak = max(8 * s / d for vs in sizes.values() for s, d in zip(vs, durations) if d > 0)
        renditions.append({
            "name": r.name, "width": r.width, "height": r.height, "bandwidth": int(peak),
            "average_bandwidth": int(8 * max(sum(sizes["a"]), sum(sizes["b"])) / sum(durations)),
            "codecs": parts[0].codecs, "init_size": parts[0].init_size, "segments": sizes,
        })
    return {
        "video_id": video_id,
        "duration": round(sum(durations), 6),
        "fps": f"{plan.fps.numerator}/{plan.fps.denominator}",
        "fps_float": float(plan.fps),
        "segment_count": len(durations),
        "segment_durations": durations,
        "frames_per_segment": plan.frames_per_segment,
        "renditions": renditions,
        "audio": audio,
        "poster": "poster.jpg",
        "thumb": "thumb.jpg",
        "watermark": {
            "scheme": WATERMARK_SCHEME, "strength": strength,
            "pattern_width": plan.mezz_width, "pattern_height": plan.mezz_height,
            "sigma_at_1080p": SIGMA_AT_1080P, "ramp_frames": RAMP_FRAMES,
            "frames_per_segment": plan.frames_per_segment,
            # The source's colour: the detector reads the original converted as viewers saw it.
            "source_color": plan.color,
            "source_decoder": plan.video_decoder,       # and with the decoder that reads it whole
        },
        # Which codeword the video's sessions get (svcommon.codeword): fixed by the segment count.
        "codeword": {"scheme": codeword.scheme_for(len(durations))},
        "encoder": {"preset": settings.preset, "codec": "libx264"},
        "source": {"width": info.width, "height": info.height,
                   "duration": info.duration_s, "video_codec": info.video_codec,
                   "audio_codec": info.audio_codec, "bitrate": info.bitrate},
        "processing_seconds": round(elapsed, 3),
    }


def _publish(staging: Path, out: Path) -> None:
    """Move the finished tree into place (a rename: same filesystem)."""
    if out.exists():
        out.rmdir()                 # checked empty at the start
    staging.rename(out)
