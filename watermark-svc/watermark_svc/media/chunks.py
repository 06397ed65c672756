"""A video's encoding split into chunks on the segment grid, each done on its own.

A chunk is a run of whole segments [first_segment, first_segment + segment_count). Its
task decodes only its frames (accurate seek on the constant-rate grid), watermarks them
with the GLOBAL segment indices, encodes A and B of the chosen rungs with closed GOPs
and packages them as if the whole video had been packaged at once:

    video/{rung}/init.mp4              identical for every chunk (checked against any
                                       init already in out_dir)
    video/{rung}/{a,b}/{i:05d}.m4s     global segment numbers, timestamps continuing
                                       (tfdt, sidx) and fragment numbers i + 1

so chunks done by any workers in any order concatenate into one stream. Audio is one
task of its own (cheap). pipeline.process runs these in one process; the queue runs
them as jobs.
"""
from __future__ import annotations

import filecmp
import math
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

from . import ffmpeg_cmd
from .abencode import VARIANTS, encode_ab_ladder
from .errors import InvalidMedia, ProcessingError
from .ffmpeg_cmd import EncodeSettings
from .ladder import Rung
from .mp4info import avc_codecs_string, hls_segment_durations, media_timescale, retime_segment
from .plan import JobPlan
from .procs import ProcessGroup, run_checked

# 15 segments = 30 s: the per-chunk overhead (ffmpeg starts, a seek from the key frame
# before, x264 lookahead and rate-control warm-up, packaging) measured ~2 CPU s per chunk
# for a 480p+360p ladder, ~4 % of a 30-s chunk's ~50 CPU s, while a one-hour video still
# splits into 120 tasks per rung group.
SEGMENTS_PER_CHUNK = 15
# Where an exact seek decodes more than LONG_SEEK_LEAD_S before its target (JobPlan.seek_lead_s:
# key frames that far apart), a chunk is made at least CHUNK_TO_SEEK_LEAD times that long,
# so the video is decoded at most 1 + 1/4 times over; one key frame for a whole film gives
# one chunk, where every chunk used to decode the film from its start up to itself (a
# quadratic cost). Below it, the lead costs at most a decode of 30 s per chunk, next to
# its encodes.
LONG_SEEK_LEAD_S = 30.0
CHUNK_TO_SEEK_LEAD = 4
AUDIO_SEGMENT_SECONDS = 2.0
AUDIO_CODECS = "mp4a.40.2"
PACKAGE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Chunk:
    index: int
    first_segment: int
    segment_count: int | None        # None: the last chunk, to the end of the source
    frames_per_segment: int

    @property
    def first_frame(self) -> int:
        return self.first_segment * self.frames_per_segment

    @property
    def frame_count(self) -> int | None:
        return None if self.segment_count is None else self.segment_count * self.frames_per_segment


@dataclass
class RungOutput:
    name: str
    codecs: str
    init_size: int
    sizes: dict[str, list[int]]      # variant -> plaintext segment sizes, in order


@dataclass
class ChunkResult:
    chunk: Chunk
    frames: int
    durations: list[float]           # seconds per segment (same for every rung)
    rungs: dict[str, RungOutput] = field(default_factory=dict)


def plan_chunks(plan: JobPlan, duration_s: float,
                segments_per_chunk: int = SEGMENTS_PER_CHUNK) -> list[Chunk]:
    """Chunks covering the whole video. The frame count is only estimated from the probed
    duration (the constant-rate conversion may add or drop a frame at the ends), so the
    last chunk runs to the end of the stream and starts at least a segment and a second
    before the estimated end: a shorter stream never leaves a chunk empty. Chunks are
    lengthened where key frames are far apart (LONG_SEEK_LEAD_S)."""
    if segments_per_chunk < 1:
        raise ValueError("segments_per_chunk must be at least 1")
    if plan.seek_lead_s > LONG_SEEK_LEAD_S:
        segments_per_chunk = max(segments_per_chunk,
                                 math.ceil(CHUNK_TO_SEEK_LEAD * plan.seek_lead_s / plan.segment_seconds))
    n = plan.frames_per_segment
    expected = max(1, int(duration_s * plan.fps))
    last_start = max(0, (expected - n - int(plan.fps)) // n)   # latest safe first segment
    starts = list(range(0, last_start + 1, segments_per_chunk))
    chunks = [Chunk(i, s, segments_per_chunk, n) for i, s in enumerate(starts[:-1])]
    return chunks + [Chunk(len(starts) - 1, starts[-1], None, n)]


def encode_chunk(source: str | os.PathLike, plan: JobPlan, settings: EncodeSettings,
                 secret: bytes, video_id: str, strength: float, rungs: Sequence[Rung],
                 chunk: Chunk, out_dir: str | os.PathLike, group: ProcessGroup,
                 on_frame: Callable[[int], None] = lambda n: None,
                 fan_out: str = "per-variant") -> ChunkResult:
    """Encode and package one chunk of ``rungs`` into out_dir (layout above).
    on_frame gets the global frame number after each frame."""
    out = Path(out_dir)
    work = out / f".chunk-{chunk.index:05d}"
    shutil.rmtree(work, ignore_errors=True)      # a killed earlier run of this chunk
    work.mkdir(parents=True)
    try:
        encoded = encode_ab_ladder(os.fspath(source), plan, settings, secret, video_id, strength,
                                   work, group, lambda n: on_frame(chunk.first_frame + n), fan_out,
                                   rungs=tuple(rungs), first_segment=chunk.first_segment,
                                   frame_count=chunk.frame_count)
        if chunk.frame_count is not None and encoded.frames != chunk.frame_count:
            raise InvalidMedia(f"the video ends before its stated duration (chunk {chunk.index} "
                               f"got {encoded.frames} of {chunk.frame_count} frames)")
        durations = _package(encoded.files, work / "pkg", plan.segment_seconds, group)
        result = ChunkResult(chunk, encoded.frames, [])
        # Everything checked before anything is placed: a refused chunk adds nothing to out.
        for r in rungs:
            _check_rung(r, durations, work / "pkg" / r.name, out, chunk, plan, result)
        for r in rungs:
            result.rungs[r.name] = _place_rung(r, work / "pkg" / r.name, out, chunk, plan)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ticks(chunk: Chunk, init: Path, plan: JobPlan) -> int:
    """The chunk's start in the track's timescale (exact, or the chunk cannot be placed)."""
    ticks = Fraction(chunk.first_frame) * media_timescale(init) / plan.fps
    if ticks.denominator != 1:
        raise ProcessingError("package", f"chunk {chunk.index} does not start on the track's time grid")
    return int(ticks)


def _check_rung(rung: Rung, durations: dict, pkg: Path, out: Path, chunk: Chunk, plan: JobPlan,
                result: ChunkResult) -> None:
    """A and B split alike, into the chunk's segments, aligned with the other rungs, and
    the init the same as the one other chunks already placed."""
    da, db = durations[(rung.name, "a")], durations[(rung.name, "b")]
    init_a = pkg / "a" / "init.mp4"
    if not filecmp.cmp(init_a, pkg / "b" / "init.mp4", shallow=False):
        raise ProcessingError("package", f"{rung.name}: A and B init segments differ")
    counts = [len(list((pkg / v).glob("*.m4s"))) for v in VARIANTS]
    if da != db or not counts[0] == counts[1] == len(da):
        raise ProcessingError("package", f"{rung.name}: A/B segmentation differs "
                              f"({counts[0]} vs {counts[1]} segments)")
    if chunk.segment_count is not None and len(da) != chunk.segment_count:
        raise ProcessingError("package", f"{rung.name}: chunk {chunk.index} made {len(da)} "
                              f"segments, not {chunk.segment_count}")
    if not result.durations:
        result.durations = da
    elif len(da) != len(result.durations) or any(abs(x - y) > 1e-3 for x, y in zip(da, result.durations)):
        raise ProcessingError("package", f"{rung.name}: segments not aligned with other rungs")
    _ticks(chunk, init_a, plan)
    init = out / "video" / rung.name / "init.mp4"
    if init.exists() and not filecmp.cmp(init_a, init, shallow=False):
        raise ProcessingError("package", f"{rung.name}: chunk {chunk.index} init segment differs "
                              "from the other chunks'")


def _place_rung(rung: Rung, pkg: Path, out: Path, chunk: Chunk, plan: JobPlan) -> RungOutput:
    """Move the checked rung into out with global segment numbers and times."""
    init_a = pkg / "a" / "init.mp4"
    files = {v: sorted((pkg / v).glob("*.m4s")) for v in VARIANTS}
    ticks = _ticks(chunk, init_a, plan)
    base = out / "video" / rung.name
    base.mkdir(parents=True, exist_ok=True)
    init = base / "init.mp4"
    if not init.exists():
        os.replace(init_a, init)
    sizes: dict[str, list[int]] = {}
    for v in VARIANTS:
        (base / v).mkdir(exist_ok=True)
        sizes[v] = []
        for k, path in enumerate(files[v]):
            index = chunk.first_segment + k
            data = retime_segment(path.read_bytes(), index + 1, ticks)
            (base / v / f"{index:05d}.m4s").write_bytes(data)
            sizes[v].append(len(data))
    return RungOutput(rung.name, avc_codecs_string(init), init.stat().st_size, sizes)


def _package(files: dict[tuple[str, str], Path], pkg: Path, seconds: float,
             group: ProcessGroup) -> dict[tuple[str, str], list[float]]:
    """Package every (rung, variant) to pkg/{rung}/{variant}/ in two lanes (stream copy,
    I/O bound); return their segment durations."""
    jobs = sorted(files)
    results: dict[tuple[str, str], list[float]] = {}
    errors: list[BaseException] = []

    def work(items):
        for r, v in items:
            try:
                results[(r, v)] = package_one(files[(r, v)], pkg / r / v, seconds, group, f"{r}-{v}")
            except BaseException as exc:    # re-raised in the caller's thread
                errors.append(exc)
                return

    lanes = [threading.Thread(target=work, args=(jobs[i::2],)) for i in range(2)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    if errors:
        raise errors[0]
    return results


def package_one(in_path: Path, out_dir: Path, seconds: float, group: ProcessGroup,
                name: str) -> list[float]:
    out_dir.mkdir(parents=True, exist_ok=True)
    run_checked(group, f"package-{name}", ffmpeg_cmd.package_cmd(str(in_path), str(out_dir), seconds),
                "package", PACKAGE_TIMEOUT_S)
    playlist = out_dir / "index.m3u8"
    durations = hls_segment_durations(playlist)
    playlist.unlink()
    return durations


def encode_audio(source: str | os.PathLike, out_dir: str | os.PathLike, duration_s: float,
                 group: ProcessGroup, stream: int | None = None) -> dict:
    """The audio task: AAC once from the probed audio ``stream``, as long as the video
    (``duration_s``, the probed published duration), packaged to out_dir/audio/; its
    metadata entry."""
    out = Path(out_dir)
    work = out / ".audio"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        mp4 = work / "audio.mp4"
        pcm = group.start("audio-decode", ffmpeg_cmd.audio_pcm_cmd(os.fspath(source), stream),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        encoder = group.start("audio", ffmpeg_cmd.encode_audio_cmd(str(mp4), duration_s), stdin=pcm.stdout)
        pcm.stdout.close()              # the encoder's now: it sees the end when the decoder exits
        group.wait_ok(encoder, "encode")
        group.wait_ok(pcm, "encode")
        d = out / "audio"
        shutil.rmtree(d, ignore_errors=True)
        durations = package_one(mp4, d, AUDIO_SEGMENT_SECONDS, group, "audio")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = [p.stat().st_size for p in sorted(d.glob("*.m4s"))]
    return {"codecs": AUDIO_CODECS, "init_size": (d / "init.mp4").stat().st_size,
            "bandwidth": ffmpeg_cmd.AUDIO_KBPS * 1000, "segment_sizes": sizes,
            "segment_durations": durations}

