"""Keyed watermark patterns: deterministic, distinct, unit RMS, smooth; ramp; embedding."""
from __future__ import annotations

import numpy as np
import pytest

from watermark_svc.media.wmpattern import (QuantizedMark, embed_pair, ramp, ramp_weights,
                                           resize_pattern, segment_pattern)

W, H = 320, 180
SECRET = b"k" * 32


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b)))


def _high_freq_fraction(p: np.ndarray, cutoff: float = 0.15) -> float:
    """Share of energy above `cutoff` cycles/pixel (Nyquist is 0.5)."""
    spec = np.abs(np.fft.rfft2(p)) ** 2
    fy = np.abs(np.fft.fftfreq(p.shape[0]))[:, None]
    fx = np.fft.rfftfreq(p.shape[1])[None, :]
    return float(spec[np.hypot(fy, fx) > cutoff].sum() / spec.sum())


def test_deterministic_for_same_key():
    a = segment_pattern(SECRET, "vid", 3, W, H)
    b = segment_pattern(SECRET, "vid", 3, W, H)
    assert a.dtype == np.float32 and a.shape == (H, W)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("other", [(SECRET, "vid", 4), (SECRET, "vid2", 3), (b"x" * 32, "vid", 3)])
def test_differs_per_index_video_and_secret(other):
    base = segment_pattern(SECRET, "vid", 3, W, H)
    p = segment_pattern(*other, W, H)
    # Independent smooth patterns: correlation ~ N(0, 1/effective samples) -> tiny.
    assert abs(_corr(base, p)) < 0.1


def test_unit_rms_zero_mean():
    for i in range(3):
        p = segment_pattern(SECRET, "vid", i, 640, 360).astype(np.float64)
        assert abs(p.mean()) < 1e-4
        assert abs(np.sqrt(np.mean(p ** 2)) - 1.0) < 1e-4


def test_smooth_low_high_frequency_energy():
    p = segment_pattern(SECRET, "vid", 0, 1280, 720)
    white = np.random.default_rng(0).standard_normal((720, 1280))
    hf_pattern, hf_white = _high_freq_fraction(p), _high_freq_fraction(white)
    print(f"\nenergy above 0.15 cyc/px: pattern {hf_pattern:.2e}, white noise {hf_white:.2f}")
    assert hf_white > 0.5
    assert hf_pattern < 0.01      # (mostly FFT leakage at the non-periodic borders)
    # Neighbouring pixels nearly equal: the blur is ~3.3 px at 720 lines.
    assert _corr(p[:, 1:], p[:, :-1]) > 0.95


def test_blur_scales_with_resolution():
    # Same relative smoothness at 360 and 1080 lines: lag-1 correlation at 1080
    # matches lag-3 at 360 (3x the pixel pitch).
    small = segment_pattern(SECRET, "v", 0, 640, 360)
    big = segment_pattern(SECRET, "v", 0, 1920, 1080)
    assert abs(_corr(big[:, 3:], big[:, :-3]) - _corr(small[:, 1:], small[:, :-1])) < 0.03


def test_resize_keeps_a_smooth_pattern():
    p = segment_pattern(SECRET, "v", 0, 1280, 720)
    small = resize_pattern(p, 640, 360)
    back = resize_pattern(small, 1280, 720)
    assert small.shape == (360, 640)
    assert _corr(p, back) > 0.97


def test_ramp_fades_edges_only():
    n = 60
    w = ramp_weights(n)
    assert w[0] < 0.1 and w[-1] < 0.1            # near zero at both boundaries
    assert np.all(w[6:-6] == 1.0)                 # full strength inside
    assert np.allclose(w, w[::-1])                # symmetric
    assert np.all(np.diff(w[:5]) > 0)             # monotone fade-in
    assert ramp(30, n) == 1.0
    assert ramp(0, 1) == 1.0                      # degenerate 1-frame segments


def test_embed_pair_is_symmetric_and_about_one_grey_level():
    rng = np.random.default_rng(1)
    luma = rng.integers(16, 236, size=(360, 640), dtype=np.uint8)
    p = segment_pattern(SECRET, "v", 0, 640, 360)
    a, b = embed_pair(luma, QuantizedMark(p, 1.0))
    da = a.astype(np.int16) - luma
    db = b.astype(np.int16) - luma
    assert np.array_equal(da, -db)
    rms = float(np.sqrt(np.mean(da.astype(np.float64) ** 2)))
    assert 0.95 < rms < 1.15                      # 1.0 plus rounding
    assert _corr(da.astype(np.float32), p) > 0.9
    psnr = 10 * np.log10(255 ** 2 / rms ** 2)
    print(f"\nwatermark alone (before encoding): PSNR {psnr:.2f} dB, RMS {rms:.3f}")


def test_embed_pair_clips_symmetrically_at_range_limits():
    luma = np.zeros((180, 320), np.uint8)
    luma[:, 160:] = 255
    luma[90:, :] = 128
    p = segment_pattern(SECRET, "v", 0, 320, 180)
    a, b = embed_pair(luma, QuantizedMark(p, 3.0))
    da = a.astype(np.int16) - luma
    db = b.astype(np.int16) - luma
    assert np.array_equal(da, -db)                # mirror images, no bias
    assert np.all(da[:90] == 0)                   # pure black/white: nothing fits
    assert np.abs(da[90:]).max() >= 3             # mid grey carries the full mark
