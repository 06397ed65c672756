"""Which video and where: fingerprint lags on synthetic fingerprints (fast, no media)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from watermark_svc.forensics.timing import match_offsets
from watermark_svc.forensics.trace import CATALOGUE_FLOOR, CATALOGUE_MIN_SIGNIFICANCE

FPS = Fraction(30)


def _source(rng, frames=5400):
    return rng.normal(0, 1, (frames, 144)).astype(np.float32)


@pytest.mark.parametrize("start", [0, 1234, 4200])
def test_a_faint_copy_is_found_by_how_far_its_peak_stands_out(start):
    """A dark, grainy leak keeps little of the motion: the true lag correlates weakly,
    below the absolute floor, but far above every other lag."""
    rng = np.random.default_rng(start)
    src = _source(rng)
    copy = 0.25 * src[start:start + 1200] + rng.normal(0, 1, (1200, 144)).astype(np.float32)
    best = match_offsets(src, copy, FPS)[0]
    assert best.offset_frames == start
    assert best.ncc < CATALOGUE_FLOOR
    assert best.significance > 3 * CATALOGUE_MIN_SIGNIFICANCE


def test_an_unrelated_video_does_not_stand_out():
    rng = np.random.default_rng(7)
    src, other = _source(rng), rng.normal(0, 1, (1200, 144)).astype(np.float32)
    best = match_offsets(src, other, FPS)[0]
    assert best.ncc < CATALOGUE_FLOOR and best.significance < CATALOGUE_MIN_SIGNIFICANCE


def test_on_looping_content_lags_inside_the_video_come_first():
    """A 10-s loop correlates alike at every period: the true lag must be among the peaks
    handed to the watermark, and every peak must explain the whole copy. (Here plain ncc
    ranking passes too; the overlap weighting is what keeps the unrelated-copy test, where
    short partial overlaps would otherwise stand out, honest.)"""
    rng = np.random.default_rng(3)
    loop = rng.normal(0, 1, (300, 144)).astype(np.float32)
    src = np.tile(loop, (18, 1)) + 1.0 * rng.normal(0, 1, (5400, 144)).astype(np.float32)
    start = 1500
    copy = src[start:start + 3600] + 1.0 * rng.normal(0, 1, (3600, 144)).astype(np.float32)
    peaks = match_offsets(src, copy, FPS)
    inside = [p for p in peaks if 0 <= p.offset_frames <= 5400 - 3600]
    assert len(inside) == len(peaks)                       # only whole-overlap lags
    assert any(abs(p.offset_frames - start) <= 1 for p in peaks)


def test_uncropped_blocks_of_a_cropped_copy_line_up_with_the_source():
    """A centred 5 % crop shifts every block; the 5 % hypothesis reads the blocks the
    copy still shows where the source has them (the outer ring is left out)."""
    from scipy.ndimage import gaussian_filter, zoom

    from watermark_svc.forensics.frames import block_means
    from watermark_svc.forensics.timing import _uncrop_matrix

    rng = np.random.default_rng(5)
    src = gaussian_filter(rng.random((360, 640)).astype(np.float32), 8)
    crop = src[9:351, 16:624]                                   # 5 % off, centred

    def to64(img):
        return zoom(img, (36 / img.shape[0], 64 / img.shape[1]), order=1)

    source_blocks = block_means(to64(src), 9, 16)
    plain = block_means(to64(crop), 9, 16)
    uncropped = _uncrop_matrix(36, 9, 0.05) @ to64(crop) @ _uncrop_matrix(64, 16, 0.05).T
    shown = ~np.isnan(uncropped)
    assert shown.sum() == 7 * 14                                # the inner blocks only
    assert np.corrcoef(source_blocks[shown], uncropped[shown])[0, 1] > 0.99
    assert np.corrcoef(source_blocks.ravel(), plain.ravel())[0, 1] < 0.5
    # crop 0 is exactly the plain block means
    flat = to64(src)
    assert np.allclose(_uncrop_matrix(36, 9, 0.0) @ flat @ _uncrop_matrix(64, 16, 0.0).T,
                       block_means(flat, 9, 16), atol=1e-5)
