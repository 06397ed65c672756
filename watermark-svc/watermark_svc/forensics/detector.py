"""Informed A/B watermark detector: one soft bit per segment of a suspect copy.

"Informed" means we have the pristine source: subtracting it from the suspect
removes the picture, leaving the watermark plus coding noise. For segment s the
correlation of that residual with the keyed pattern P_s is positive if the
leaker was served variant A (+P_s), negative for B (-P_s).

To turn a correlation into a z-score we need its spread under "no watermark":
we correlate the same residual with P_s circularly shifted by many offsets
larger than the pattern's blur radius (each shift is, statistically, another
independent pattern) -- one FFT gives thousands of such null samples, and they
see exactly the residual's own noise, whatever its spectrum.

Time alignment: suspect frame k is source frame k + offset_frames (registration
that finds the offset for trimmed copies can be added in front of this).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from svcommon import ffmpeg as ff
from svcommon.codeword import UNIFORM, Code

from ..media.errors import InvalidMedia, ProcessingError
from ..media.ladder import even
from ..media.plan import plan_job
from ..media.probe import probe
from .frames import ANALYSIS_BOUNDS, analysis_filter
from ..media.wmpattern import (RAMP_FRAMES, blur_sigma, ramp_weights, resize_pattern,
                               segment_pattern)

ANALYSIS_MAX_HEIGHT = 360     # the pattern is smooth: more pixels add cost, not SNR
NULL_GUARD_SIGMAS = 6.0       # shifts closer than this still correlate with P_s


class SoftBit(NamedTuple):
    index: int      # segment index in the source
    z: float        # > 0: variant A, < 0: variant B; |z| is the confidence


@dataclass(frozen=True)
class WatermarkGeometry:
    """How the pipeline laid the watermark out (stored in processing metadata)."""
    pattern_width: int
    pattern_height: int
    frames_per_segment: int
    fps: Fraction
    ramp_frames: int = RAMP_FRAMES
    codeword_scheme: str = UNIFORM     # which codeword the sessions got (svcommon.codeword)
    source_color: str = ""             # an HDR/wide-gamut original: read converted (frames.analysis_filter)

    def code(self, video_id: str) -> Code:
        return Code(self.codeword_scheme, video_id)


def geometry_for_source(source_path: str, segment_seconds: float = 2.0) -> WatermarkGeometry:
    """Recompute the geometry from the source, exactly as the pipeline planned it."""
    plan = plan_job(probe(source_path), segment_seconds)
    return WatermarkGeometry(plan.mezz_width, plan.mezz_height,
                             plan.frames_per_segment, plan.fps, source_color=plan.color)


def _gray_frames_cmd(path: str, width: int, height: int, fps: Fraction, color: str = "",
                     viewed: tuple[int, int] | None = None) -> list[str]:
    # Area averaging is the gentlest downscale; both inputs go through the same one.
    vf = analysis_filter(width, height, fps, color, viewed)
    return [*ff.base(), *ff.input_args(path),
            "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf, "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]


class _GrayReader:
    """Streams float32 luma frames of one file at the analysis size."""

    def __init__(self, path: str, width: int, height: int, fps: Fraction, color: str = "",
                 viewed: tuple[int, int] | None = None):
        self.size = width * height
        self.shape = (height, width)
        self.proc = ff.spawn(_gray_frames_cmd(path, width, height, fps, color, viewed), ANALYSIS_BOUNDS,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def read(self) -> np.ndarray | None:
        data = self.proc.stdout.read(self.size)
        if len(data) < self.size:
            return None
        return np.frombuffer(data, dtype=np.uint8).reshape(self.shape).astype(np.float32)

    def close(self) -> str:
        self.proc.stdout.close()
        if self.proc.poll() is None:
            ff.kill_group(self.proc)
        _, err = self.proc.communicate()
        return (err or b"").decode("utf-8", "replace")[-2000:]


def analysis_size(geometry: WatermarkGeometry, suspect_height: int) -> tuple[int, int]:
    h = even(min(ANALYSIS_MAX_HEIGHT, suspect_height, geometry.pattern_height))
    return even(h * geometry.pattern_width / geometry.pattern_height), h


def segment_z(residual_sum: np.ndarray, pattern: np.ndarray, guard_px: float) -> float:
    """z-score of <residual, pattern> against the same correlation at far shifts."""
    spec = np.fft.rfft2(residual_sum) * np.conj(np.fft.rfft2(pattern))
    xcorr = np.fft.irfft2(spec, s=residual_sum.shape)
    h, w = xcorr.shape
    g = int(np.ceil(guard_px))
    dy = np.minimum(np.arange(h), h - np.arange(h))[:, None]
    dx = np.minimum(np.arange(w), w - np.arange(w))[None, :]
    null = xcorr[(dy > g) | (dx > g)]
    spread = float(null.std())
    if spread == 0.0:
        return 0.0
    return float((xcorr[0, 0] - null.mean()) / spread)


def read_soft_bits(suspect_path: str, source_path: str, video_id: str, secret: bytes, *,
                   offset_frames: int = 0, geometry: WatermarkGeometry | None = None,
                   min_frames: int | None = None) -> list[SoftBit]:
    """Per-segment soft bits of `suspect_path`, in segment order.

    geometry defaults to what the pipeline would plan for source_path; pass the
    stored one when available. Segments covered by fewer than min_frames suspect
    frames (default: a quarter segment) are skipped.
    """
    geometry = geometry or geometry_for_source(source_path)
    suspect = probe(suspect_path)
    aw, ah = analysis_size(geometry, suspect.height)
    n_seg = geometry.frames_per_segment
    min_frames = max(1, n_seg // 4) if min_frames is None else min_frames
    weights = ramp_weights(n_seg, geometry.ramp_frames)
    guard = NULL_GUARD_SIGMAS * blur_sigma(geometry.pattern_height) * ah / geometry.pattern_height

    src = _GrayReader(source_path, aw, ah, geometry.fps, geometry.source_color,      # the original
                      (geometry.pattern_width, geometry.pattern_height))
    sus = _GrayReader(suspect_path, aw, ah, geometry.fps)
    bits: list[SoftBit] = []
    try:
        _skip(src, max(0, offset_frames))
        _skip(sus, max(0, -offset_frames))
        n = max(0, offset_frames)                 # source frame number of the pair
        current, acc, count, compared = -1, None, 0, 0

        def finish():
            if current >= 0 and count >= min_frames:
                pattern = resize_pattern(segment_pattern(
                    secret, video_id, current, geometry.pattern_width,
                    geometry.pattern_height), aw, ah)
                bits.append(SoftBit(current, segment_z(acc, pattern, guard)))

        while True:
            a, b = sus.read(), src.read()
            if a is None or b is None:
                break
            seg, f = divmod(n, n_seg)
            if seg != current:
                finish()
                current, acc, count = seg, np.zeros((ah, aw), np.float32), 0
            residual = a - b
            residual -= residual.mean()     # re-encodes shift overall brightness
            acc += weights[f] * residual
            count += 1
            compared += 1
            n += 1
        finish()
    finally:
        err_src, err_sus = src.close(), sus.close()
    if not bits:
        if compared == 0:
            raise InvalidMedia("no frames could be compared (check the files and offset)")
        raise ProcessingError("detect", "no segment had enough frames",
                              (err_src + err_sus).strip())
    return bits


def _skip(reader: _GrayReader, frames: int) -> None:
    for _ in range(frames):
        if reader.read() is None:
            return
