"""Decisions derived from the probe that both the pipeline and the detector need.

The forensic detector must regenerate exactly the watermark geometry the pipeline
used (pattern size = mezzanine size, frames per segment, frame rate), so both
compute it here rather than each on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .ladder import Rung, choose_ladder
from .probe import ProbeResult

MAX_OUTPUT_FPS = Fraction(60)   # 120 fps phone clips are halved: browsers and bitrate
# Output rates players and encoders expect. A source's average rate that is none of them
# (variable frame rate: phones, screen recordings; an odd constant rate) is raised to the
# next one, so the CFR output repeats frames rather than dropping any, and the 2-s segment
# grid holds a whole number of frames.
STANDARD_FPS = tuple(sorted(Fraction(f) for f in (
    "10", "12", "15", "20", "24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60",
    "100", "120000/1001", "120")))


@dataclass(frozen=True)
class JobPlan:
    fps: Fraction               # constant output frame rate
    frames_per_segment: int     # = GOP length
    mezz_width: int             # decode/watermark size = top rung size
    mezz_height: int
    rungs: tuple[Rung, ...]
    seek_margin_s: float = 0.0  # how early a chunk's seek aims (svcommon.mediaprobe, "Seeking")
    deinterlace: bool = False   # the source is coded as fields: decode_raw_cmd deinterlaces
    color: str = ""             # the source's colour (ProbeResult.color): converted to BT.709 SDR
    seek_lead_s: float = 0.0    # the most a chunk's decode reads before its first frame (chunks.plan_chunks)
    video_decoder: str = ""     # the source's picture decoder (ProbeResult.video_decoder), "": ffmpeg's

    @property
    def segment_seconds(self) -> float:
        return float(self.frames_per_segment / self.fps)


def output_fps(source_fps: Fraction) -> Fraction:
    # 0.2 % slack: a CFR 29.97 source whose average comes out a hair off stays 30000/1001.
    fps = next((f for f in STANDARD_FPS if f * Fraction(998, 1000) <= source_fps <= f), None) \
        or next((f for f in STANDARD_FPS if f >= source_fps and f.denominator == 1), source_fps)
    while fps > MAX_OUTPUT_FPS:
        fps /= 2
    return fps


def plan_job(p: ProbeResult, segment_seconds: float = 2.0,
             rungs: list[Rung] | None = None) -> JobPlan:
    """Watermark at the top rung's size: the largest picture any viewer receives.

    Decoding straight to it (rather than to a bigger source size) keeps the raw
    pipe and the per-frame numpy work as small as possible; lower rungs are
    scaled from it by the encoders, carrying the same pattern, scaled.
    """
    if segment_seconds <= 0:
        raise ValueError("segment_seconds must be positive")
    rungs = list(rungs) if rungs else choose_ladder(p)
    fps = output_fps(p.fps)
    frames = max(1, int(round(fps * Fraction(segment_seconds).limit_denominator(1000))))
    top = max(rungs, key=lambda r: r.width * r.height)
    return JobPlan(fps=fps, frames_per_segment=frames, mezz_width=top.width,
                   mezz_height=top.height,
                   rungs=tuple(sorted(rungs, key=lambda r: -r.height)), seek_margin_s=p.seek_margin_s,
                   deinterlace=p.interlaced, color=p.color, seek_lead_s=p.seek_lead_s,
                   video_decoder=p.video_decoder)
