"""Keyed forensic watermark patterns (A/B segment variants) and how to embed them.

Each segment index s of a video gets its own pattern P_s: white noise derived from
HMAC-SHA256(secret, "video_id:s"), Gaussian-blurred (sigma ~5 px at 1080p, scaled
with the frame height) and normalised to zero mean, unit RMS. Variant A adds
+strength*P_s to the luma of every frame of segment s, variant B adds -strength*P_s.
Smooth low-amplitude patterns survive downscaling and re-encoding (they live in the
low frequencies that codecs keep) while staying invisible (~1 grey level RMS).

The noise comes from SHAKE-256 rather than numpy's Generator because forensic
detection must reproduce exactly the same pattern years later, and numpy does not
promise stable streams across versions.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter

SIGMA_AT_1080P = 5.0     # blur radius in pixels of a 1080-line frame
RAMP_FRAMES = 4          # raised-cosine fade length at each segment edge
DEFAULT_STRENGTH = 1.0   # pattern RMS in 8-bit luma grey levels


def pattern_key(secret: bytes, video_id: str, index: int) -> bytes:
    """Per-segment key; knowing it for one segment says nothing about another."""
    return hmac.new(secret, f"{video_id}:{index}".encode(), hashlib.sha256).digest()


def blur_sigma(height: int) -> float:
    return SIGMA_AT_1080P * height / 1080.0


def segment_pattern(secret: bytes, video_id: str, index: int,
                    width: int, height: int) -> np.ndarray:
    """The unit-RMS, zero-mean float32 (height, width) pattern for segment `index`."""
    return keyed_pattern(pattern_key(secret, video_id, index), width, height)


def keyed_pattern(key: bytes, width: int, height: int) -> np.ndarray:
    """Blurred keyed noise; also used with throwaway keys for detector null tests."""
    raw = hashlib.shake_256(key).digest(width * height)
    noise = np.frombuffer(raw, dtype=np.uint8).astype(np.float32).reshape(height, width)
    noise -= 127.5
    smooth = gaussian_filter(noise, sigma=blur_sigma(height), mode="reflect")
    smooth -= smooth.mean()
    rms = float(np.sqrt(np.mean(smooth.astype(np.float64) ** 2)))
    return (smooth / rms).astype(np.float32)


def ramp(frame_in_segment: int, frames_per_segment: int,
         ramp_frames: int = RAMP_FRAMES) -> float:
    """Weight in (0, 1] of the pattern on a frame: raised-cosine fade in and out.

    Fading at both edges means switching between A and B (or between P_s and
    P_s+1) at a segment boundary changes the picture by a fraction of a grey level
    instead of a visible step.
    """
    n = frames_per_segment
    r = min(ramp_frames, n // 2)
    if r <= 0:
        return 1.0
    edge = min(frame_in_segment, n - 1 - frame_in_segment)
    if edge >= r:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * (edge + 0.5) / r)


def ramp_weights(frames_per_segment: int, ramp_frames: int = RAMP_FRAMES) -> np.ndarray:
    return np.array([ramp(f, frames_per_segment, ramp_frames)
                     for f in range(frames_per_segment)], dtype=np.float32)


class QuantizedMark:
    """A pattern scaled and rounded to whole grey levels, split into +/- parts.

    Keeping the positive and negative parts as separate uint8 planes lets
    `embed_pair` work with four in-place uint8 operations per frame instead of
    int16 conversions (the pipeline does this for every frame at mezzanine size).
    """

    __slots__ = ("pos", "neg", "peak")

    def __init__(self, pattern: np.ndarray, amplitude: float):
        q = np.rint(pattern * amplitude).astype(np.int16)
        self.peak = int(np.abs(q).max()) if q.size else 0
        self.pos = np.clip(q, 0, 255).astype(np.uint8)
        self.neg = np.clip(-q, 0, 255).astype(np.uint8)


def embed_pair(luma: np.ndarray, mark: QuantizedMark) -> tuple[np.ndarray, np.ndarray]:
    """Return (luma + mark, luma - mark) as uint8 planes.

    Where adding or subtracting would leave 0..255 the mark is reduced equally in A
    and B at that pixel, so the variants stay exact mirror images around the source
    (no bias the detector could mistake for a bit). That only happens near pure
    black/white, which tv-range video rarely reaches, so the fast path is the norm.
    """
    p = mark.peak
    if p == 0:
        return luma.copy(), luma.copy()
    if int(luma.min()) >= p and int(luma.max()) <= 255 - p:
        # No pixel can leave 0..255: plain uint8 arithmetic cannot wrap.
        a = np.subtract(luma, mark.neg)
        a += mark.pos
        b = np.subtract(luma, mark.pos)
        b += mark.neg
        return a, b
    y = luma.astype(np.int16)
    q = mark.pos.astype(np.int16) - mark.neg.astype(np.int16)
    room = np.minimum(y, 255 - y)
    q = np.clip(q, -room, room)
    return (y + q).astype(np.uint8), (y - q).astype(np.uint8)


@lru_cache(maxsize=32)
def _resize_matrix(src: int, dst: int) -> sparse.csr_matrix:
    """(dst, src) linear-resampling matrix; tent widens when shrinking (anti-alias).
    Sparse: each row has a few taps, and a dense product costs ~40 ms per frame-sized
    pattern where this costs ~1 (the detector resizes one pattern per segment read)."""
    scale = src / dst
    support = max(1.0, scale)
    centers = (np.arange(dst) + 0.5) * scale - 0.5
    x = np.arange(src)[None, :]
    w = np.clip(1.0 - np.abs(x - centers[:, None]) / support, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    return sparse.csr_matrix(w.astype(np.float32))


def resize_pattern(pattern: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample a smooth pattern to (height, width), as a video scaler would."""
    h, w = pattern.shape
    if (h, w) == (height, width):
        return pattern
    rows = _resize_matrix(h, height) @ pattern                  # (height, w)
    return np.ascontiguousarray((_resize_matrix(w, width) @ rows.T).T, dtype=np.float32)
