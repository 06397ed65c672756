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

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from svcommon.codeword import UNIFORM, Code

from ..media.errors import InvalidMedia, ProcessingError
from ..media.ladder import even
from ..media.plan import plan_job
from ..media.probe import probe
from .frames import GrayFrames
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
    source_decoder: str = ""           # the original's picture decoder (JobPlan.video_decoder)

    def code(self, video_id: str) -> Code:
        return Code(self.codeword_scheme, video_id)


def geometry_for_source(source_path: str, segment_seconds: float = 2.0) -> WatermarkGeometry:
    """Recompute the geometry from the source, exactly as the pipeline planned it."""
    plan = plan_job(probe(source_path), segment_seconds)
    return WatermarkGeometry(plan.mezz_width, plan.mezz_height,
                             plan.frames_per_segment, plan.fps, source_color=plan.color,
                             source_decoder=plan.video_decoder)


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

    src = GrayFrames(source_path, aw, ah, geometry.fps, color=geometry.source_color,      # the original
                     viewed=(geometry.pattern_width, geometry.pattern_height),
                     video_decoder=geometry.source_decoder)
    sus = GrayFrames(suspect_path, aw, ah, geometry.fps)
    bits: list[SoftBit] = []
    try:
        # Pairs of frames from the offset on (islice: the skipped ones are decoded, not kept).
        pairs = zip(itertools.islice(sus, max(0, -offset_frames), None),
                    itertools.islice(src, max(0, offset_frames), None))
        n = max(0, offset_frames)                 # source frame number of the pair
        current, acc, count, compared = -1, None, 0, 0

        def finish():
            if current >= 0 and count >= min_frames:
                pattern = resize_pattern(segment_pattern(
                    secret, video_id, current, geometry.pattern_width,
                    geometry.pattern_height), aw, ah)
                bits.append(SoftBit(current, segment_z(acc, pattern, guard)))

        for a, b in pairs:
            seg, f = divmod(n, n_seg)
            if seg != current:
                finish()
                current, acc, count = seg, np.zeros((ah, aw), np.float32), 0
            residual = a.astype(np.float32) - b
            residual -= residual.mean()     # re-encodes shift overall brightness
            acc += weights[f] * residual
            count += 1
            compared += 1
            n += 1
        finish()
    finally:
        src.close()
        sus.close()
    if not bits:
        if compared == 0:
            raise InvalidMedia("no frames could be compared (check the files and offset)")
        raise ProcessingError("detect", "no segment had enough frames",
                              (src.stderr + sus.stderr).strip())
    return bits
