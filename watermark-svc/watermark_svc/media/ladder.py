"""Choose the adaptive-bitrate ladder for a source.

Rungs are bounding boxes (1920x1080, 1280x720, ...) the source is fitted into with
its display aspect kept, so letterboxed 2.40:1 films and portrait phone videos get
sensible sizes too. We never upscale: a rung is used only if it fits inside the
source. Pure functions, no ffmpeg.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .probe import ProbeResult

# (name, box width, box height, video kbps, maxrate kbps, bufsize kbit) at <= 30 fps.
# maxrate ~1.07x target caps peaks for the manifest BANDWIDTH; bufsize 2x = ~2 s VBV.
STANDARD_RUNGS = (
    ("1080p", 1920, 1080, 5000, 5350, 10000),
    ("720p", 1280, 720, 2800, 3000, 5600),
    ("480p", 854, 480, 1400, 1500, 2800),
    ("360p", 640, 360, 800, 856, 1600),
)
HIGH_FPS_BITRATE_FACTOR = 1.5     # > 30 fps needs more bits for the same quality


@dataclass(frozen=True)
class Rung:
    name: str
    width: int
    height: int
    video_kbps: int
    maxrate: int      # kbps
    bufsize: int      # kbit

    @property
    def bandwidth_bps(self) -> int:
        """Peak bits/s of the video, as advertised in manifests (before audio)."""
        return self.maxrate * 1000


def even(x: float) -> int:
    """Nearest even integer >= 2 (yuv420p needs even dimensions)."""
    return max(2, int(round(x / 2.0)) * 2)


def fit_in_box(aspect: Fraction, box_w: int, box_h: int) -> tuple[int, int]:
    """Largest even (w, h) with display aspect `aspect` inside box_w x box_h."""
    if Fraction(box_w, box_h) > aspect:       # box is wider: height limits
        return even(box_h * aspect), even(box_h)
    return even(box_w), even(box_w / aspect)


def choose_ladder(p: ProbeResult) -> list[Rung]:
    """Rungs from the standard set that do not exceed the source, largest first."""
    aspect = p.display_aspect
    portrait = aspect < 1
    # The frame size the source actually shows at (square pixels).
    src_w, src_h = display_size(p)
    fps_factor = HIGH_FPS_BITRATE_FACTOR if p.fps > 31 else 1.0
    rungs: list[Rung] = []
    for name, bw, bh, kbps, maxrate, bufsize in STANDARD_RUNGS:
        if portrait:
            bw, bh = bh, bw
        w, h = fit_in_box(aspect, bw, bh)
        if w > src_w + 2 or h > src_h + 2:    # +2: even-rounding slack, not upscaling
            continue
        scale = fps_factor * min(1.0, max(0.5, (w * h) / (bw * bh)))
        rungs.append(Rung(name, w, h, int(kbps * scale), int(maxrate * scale),
                          int(bufsize * scale)))
    if rungs:
        return rungs
    # Smaller than the 360p box: one rung at the source's own size.
    w, h = even(src_w), even(src_h)
    _, bw, bh, kbps, maxrate, bufsize = STANDARD_RUNGS[-1]
    scale = fps_factor * max(0.25, (w * h) / (bw * bh))
    return [Rung(f"{min(w, h)}p", w, h, int(kbps * scale), int(maxrate * scale),
                 int(bufsize * scale))]


def display_size(p: ProbeResult) -> tuple[int, int]:
    """Source size in square pixels (non-square SAR widens or narrows the width)."""
    if p.display_aspect >= 1:
        return int(round(p.height * p.display_aspect)), p.height
    return p.width, int(round(p.width / p.display_aspect))


# H.264 level limits: (level_idc, max macroblocks per frame, max MB/s, max kbps High)
_H264_LEVELS = (
    (30, 1620, 40500, 12500),
    (31, 3600, 108000, 17500),
    (32, 5120, 216000, 25000),
    (40, 8192, 245760, 25000),
    (41, 8192, 245760, 62500),
    (42, 8704, 522240, 62500),
    (50, 22080, 589824, 168750),
    (51, 36864, 983040, 300000),
)


def h264_level(width: int, height: int, fps: Fraction, maxrate_kbps: int) -> str:
    """Smallest H.264 level (as x264's "3.1" string) that fits the rung."""
    mbs = math.ceil(width / 16) * math.ceil(height / 16)
    mbps = mbs * float(fps)
    for idc, max_fs, max_mbps, max_kbps in _H264_LEVELS:
        if mbs <= max_fs and mbps <= max_mbps and maxrate_kbps <= max_kbps:
            return f"{idc // 10}.{idc % 10}"
    return "5.1"
