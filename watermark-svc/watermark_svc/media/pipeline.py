"""Process one uploaded video into the watermarked A/B CMAF ladder.

Steps (reported through `progress`): probe -> encode (decode once, watermark,
encode every rung twice, audio once) -> package (CMAF segments) -> thumbnails.
Everything is built in a hidden staging directory next to out_dir and moved into
place only when complete, so a failure never leaves partial outputs behind.

Output layout:
    video/{rung}/init.mp4            shared by A and B (verified byte-identical)
    video/{rung}/{a,b}/{i:05d}.m4s   segment i of variant A / B
    audio/init.mp4, audio/{i:05d}.m4s
    poster.jpg, thumb.jpg
"""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from . import ffmpeg_cmd
from .abencode import VARIANTS, encode_ab_ladder
from .errors import InvalidMedia, LimitExceeded, MediaError, ProcessingError
from .ffmpeg_cmd import EncodeSettings
from .ladder import Rung
from .mp4info import avc_codecs_string, hls_segment_durations
from .plan import JobPlan, plan_job
from .probe import MediaLimits, ProbeResult, probe
from .procs import ProcessGroup, run_checked
from .wmpattern import RAMP_FRAMES, SIGMA_AT_1080P

WATERMARK_SCHEME = "ab-luma-blurnoise-v1"
AUDIO_CODECS = "mp4a.40.2"
DEFAULT_PRESET = os.environ.get("STREAMVAULT_X264_PRESET", "fast")
POSTER_AT_FRACTION = 0.1          # 10% in: past fades from black, still early
PACKAGE_TIMEOUT_S = 600
STILL_TIMEOUT_S = 120

# Progress ranges per step (percent).
_P_ENCODE, _P_PACKAGE, _P_THUMBS = (2, 90), 90, 97

Progress = Callable[[int, str], None]


def process(source_path: str | os.PathLike, out_dir: str | os.PathLike, video_id: str,
            secret: bytes, *, segment_seconds: float = 2, strength: float = 1.0,
            progress: Progress = lambda pct, step: None,
            ladder: list[Rung] | None = None, preset: str | None = None,
            x264_threads: int = 0, fan_out: str = "per-variant",
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
        info = probe(source, limits)
        group.arm(limits.work_bounds(info.duration_s))
        plan = plan_job(info, segment_seconds, ladder)
        settings = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment,
                                  preset=preset or DEFAULT_PRESET, threads=x264_threads)
        progress(_P_ENCODE[0], "encode")
        encoded, audio_mp4 = _encode(source, info, plan, settings, secret, video_id,
                                     strength, staging / "work", group, progress, fan_out)
        progress(_P_PACKAGE, "package")
        renditions, durations = _package_video(plan, encoded, staging, group)
        audio = _package_audio(audio_mp4, staging, group) if audio_mp4 else None
        progress(_P_THUMBS, "thumbnails")
        _stills(source, info, plan, staging, group)
        shutil.rmtree(staging / "work")
        meta = _metadata(video_id, info, plan, settings, strength, renditions, audio,
                         durations, time.monotonic() - started)
        group.kill_all()            # all exited by now; closes their pipes
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


def _encode(source: str, info: ProbeResult, plan: JobPlan, settings: EncodeSettings,
            secret: bytes, video_id: str, strength: float, work: Path,
            group: ProcessGroup, progress: Progress, fan_out: str):
    audio_mp4 = work / "audio.mp4" if info.has_audio else None
    audio_proc = (group.start("audio", ffmpeg_cmd.encode_audio_cmd(source, str(audio_mp4)),
                              stdin=subprocess.DEVNULL)
                  if audio_mp4 else None)
    expected = max(1, int(info.duration_s * plan.fps))
    # The probe measured the duration from the packets; the constant-rate conversion may
    # add a frame or two at the ends, never more. Anything beyond is a crafted timeline
    # (duplicated frames filling a gap): stop at once instead of encoding for hours.
    frame_cap = int(expected * 1.02) + 2 * int(plan.fps) + 2
    lo, hi = _P_ENCODE
    last = [lo]

    def on_frame(n: int) -> None:
        if n > frame_cap:
            raise InvalidMedia(f"the video produces more than {frame_cap} frames, but its "
                               f"{info.duration_s:.1f} s at {float(plan.fps):g} fps allow {expected} "
                               "(broken or crafted timestamps)")
        pct = lo + (hi - lo) * min(n, expected) // expected
        if pct != last[0]:
            last[0] = pct
            progress(pct, "encode")

    encoded = encode_ab_ladder(source, plan, settings, secret, video_id, strength,
                               work, group, on_frame, fan_out)
    if audio_proc is not None:
        group.wait_ok(audio_proc, "encode")
    return encoded, audio_mp4


def _package_one(in_path: Path, out_dir: Path, seconds: float, group: ProcessGroup,
                 name: str) -> list[float]:
    out_dir.mkdir(parents=True, exist_ok=True)
    run_checked(group, f"package-{name}",
                ffmpeg_cmd.package_cmd(str(in_path), str(out_dir), seconds),
                "package", PACKAGE_TIMEOUT_S)
    playlist = out_dir / "index.m3u8"
    durations = hls_segment_durations(playlist)
    playlist.unlink()
    return durations


def _segment_files(d: Path) -> list[Path]:
    return sorted(d.glob("*.m4s"))


def _package_video(plan: JobPlan, encoded, staging: Path, group: ProcessGroup):
    """Package each (rung, variant); check A/B interchangeability; keep one init."""
    renditions, reference = [], None
    jobs = [(r, v) for r in plan.rungs for v in VARIANTS]
    results: dict[tuple[str, str], list[float]] = {}
    errors: list[BaseException] = []

    def work(items):
        for r, v in items:
            try:
                results[(r.name, v)] = _package_one(
                    encoded.files[(r.name, v)], staging / "video" / r.name / v,
                    plan.segment_seconds, group, f"{r.name}-{v}")
            except BaseException as exc:    # re-raised in the caller's thread
                errors.append(exc)
                return

    # Packaging is stream copy (I/O bound): two lanes are plenty.
    lanes = [threading.Thread(target=work, args=(jobs[i::2],)) for i in range(2)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    if errors:
        raise errors[0]

    for r in plan.rungs:
        base = staging / "video" / r.name
        da, db = results[(r.name, "a")], results[(r.name, "b")]
        init_a, init_b = base / "a" / "init.mp4", base / "b" / "init.mp4"
        if not filecmp.cmp(init_a, init_b, shallow=False):
            raise ProcessingError("package", f"{r.name}: A and B init segments differ")
        init_a.rename(base / "init.mp4")
        init_b.unlink()
        seg_a, seg_b = _segment_files(base / "a"), _segment_files(base / "b")
        if len(seg_a) != len(seg_b) or len(seg_a) != len(da) or da != db:
            raise ProcessingError("package", f"{r.name}: A/B segmentation differs "
                                  f"({len(seg_a)} vs {len(seg_b)} segments)")
        if reference is None:
            reference = da
        elif len(da) != len(reference) or any(abs(x - y) > 1e-3 for x, y in zip(da, reference)):
            raise ProcessingError("package", f"{r.name}: segments not aligned with other rungs")
        sizes_a = [p.stat().st_size for p in seg_a]
        sizes_b = [p.stat().st_size for p in seg_b]
        peak = max(8 * s / d for sizes in (sizes_a, sizes_b) for s, d in zip(sizes, da) if d > 0)
        total = sum(da)
        renditions.append({
            "name": r.name, "width": r.width, "height": r.height,
            "bandwidth": int(peak),
            "average_bandwidth": int(8 * max(sum(sizes_a), sum(sizes_b)) / total),
            "codecs": avc_codecs_string(base / "init.mp4"),
            "init_size": (base / "init.mp4").stat().st_size,
            "segments": {"a": sizes_a, "b": sizes_b},
        })
    return renditions, reference or []


def _package_audio(audio_mp4: Path, staging: Path, group: ProcessGroup) -> dict:
    d = staging / "audio"
    durations = _package_one(audio_mp4, d, 2.0, group, "audio")
    sizes = [p.stat().st_size for p in _segment_files(d)]
    return {"codecs": AUDIO_CODECS, "init_size": (d / "init.mp4").stat().st_size,
            "bandwidth": ffmpeg_cmd.AUDIO_KBPS * 1000, "segment_sizes": sizes,
            "segment_durations": durations}


def _stills(source: str, info: ProbeResult, plan: JobPlan, staging: Path,
            group: ProcessGroup) -> None:
    at = info.duration_s * POSTER_AT_FRACTION
    run_checked(group, "poster", ffmpeg_cmd.poster_cmd(
        source, at, plan.mezz_width, plan.mezz_height, str(staging / "poster.jpg")),
        "thumbnails", STILL_TIMEOUT_S)
    run_checked(group, "thumb", ffmpeg_cmd.thumb_cmd(
        source, at, plan.mezz_width, plan.mezz_height, str(staging / "thumb.jpg")),
        "thumbnails", STILL_TIMEOUT_S)
    for name in ("poster.jpg", "thumb.jpg"):
        if not (staging / name).is_file() or (staging / name).stat().st_size == 0:
            raise ProcessingError("thumbnails", f"{name} was not produced")


def _metadata(video_id, info, plan, settings, strength, renditions, audio, durations,
              elapsed) -> dict:
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
        },
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
