"""Which video, and where in it: temporal fingerprints and the time offset.

A fingerprint is one 16x9 grid of block means per frame (at the source's frame
rate). Small blocks are indifferent to re-encoding, downscaling and a few percent
of crop; removing each frame's mean ignores brightness shifts; a 1-second
temporal high-pass keeps what *changes*, which is what pins down time.

The offset is the lag maximising the normalised cross-correlation of the two
fingerprint sequences over their overlap, for every lag at once with one FFT.
Nothing here decides who leaked: a wrong video or offset only makes the
watermark read as noise, which the scoring turns into "no match".
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.ndimage import uniform_filter1d

from .frames import GrayFrames, block_means

FP_ROWS, FP_COLS = 9, 16            # fingerprint grid
FP_DECODE = (64, 36)                # decode size: 4x4 pixels per block
HIGHPASS_SECONDS = 1.0
MIN_OVERLAP_SECONDS = 8.0


@dataclass(frozen=True)
class OffsetMatch:
    offset_frames: int      # suspect frame k shows source frame k + offset_frames
    ncc: float              # normalised correlation at that lag (1 = identical motion)
    overlap_frames: int
    significance: float = 0.0   # robust z of ncc among all lags: how far the peak stands out


def fingerprint(path: str, fps: Fraction, progress=None, expected_frames: int = 0, color: str = "",
                video_decoder: str = "", viewed: tuple[int, int] | None = None) -> np.ndarray:
    """(frames, 144) float32 block means of `path` resampled to `fps`. An analysis proxy is
    read as it is; an original as processing read it (``color``, ``video_decoder``,
    ``viewed``: the geometry's; frames.analysis_filter), so an HDR one is converted and a
    WebM's transparency is black, as in the frames the readout compares with it."""
    rows = []
    with GrayFrames(path, FP_DECODE[0], FP_DECODE[1], fps, color=color, viewed=viewed,
                    video_decoder=video_decoder) as frames:
        for n, frame in enumerate(frames):
            rows.append(block_means(frame, FP_ROWS, FP_COLS).ravel())
            if progress and expected_frames and n % 250 == 0:
                progress(min(1.0, n / expected_frames))
    if not rows:
        return np.zeros((0, FP_ROWS * FP_COLS), np.float32)
    return np.stack(rows).astype(np.float32)


SUSPECT_CROPS = (0.0, 0.05, 0.10)   # centred crop hypotheses for the suspect's fingerprint


def _uncrop_matrix(pixels: int, blocks: int, crop: float) -> np.ndarray:
    """(blocks, pixels) weights: the mean of each source block, read from a suspect that
    shows only the central (1 - crop) of the source; NaN rows for blocks not wholly
    inside the suspect. crop = 0 gives exactly block_means' averaging."""
    size = pixels / blocks                         # block width in source pixels
    w = np.full((blocks, pixels), np.nan, np.float32)
    edges = np.arange(pixels)
    for k in range(blocks):
        # source interval of block k, in suspect pixel coordinates
        lo = (k * size - pixels * crop / 2) / (1 - crop)
        hi = ((k + 1) * size - pixels * crop / 2) / (1 - crop)
        if lo < -1e-9 or hi > pixels + 1e-9:
            continue
        overlap = np.clip(np.minimum(edges + 1, hi) - np.maximum(edges, lo), 0, None)
        w[k] = overlap / (hi - lo)
    return w


def suspect_fingerprints(path: str, fps: Fraction, crops=SUSPECT_CROPS, progress=None,
                         expected_frames: int = 0, max_frames: int | None = None) -> dict[float, np.ndarray]:
    """A suspect's fingerprint as it would look uncropped, for each crop hypothesis (one
    decode). Blocks the suspect does not show are NaN; match_offsets ignores them. Why:
    on content that moves across the frame (scrolling texture), a crop shifts every block
    and the plain fingerprint no longer lines up in time; the right hypothesis restores it."""
    mats = {c: (_uncrop_matrix(FP_DECODE[1], FP_ROWS, c), _uncrop_matrix(FP_DECODE[0], FP_COLS, c))
            for c in crops}
    rows: dict[float, list] = {c: [] for c in crops}
    with GrayFrames(path, FP_DECODE[0], FP_DECODE[1], fps, max_frames=max_frames) as frames:
        for n, frame in enumerate(frames):
            f = frame.astype(np.float32)
            for c, (wy, wx) in mats.items():
                rows[c].append((wy @ f @ wx.T).ravel())
            if progress and expected_frames and n % 250 == 0:
                progress(min(1.0, n / expected_frames))
    return {c: (np.stack(r).astype(np.float32) if r else np.zeros((0, FP_ROWS * FP_COLS), np.float32))
            for c, r in rows.items()}


def _prepare(fp: np.ndarray, fps: Fraction) -> np.ndarray:
    x = fp.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    win = max(3, int(round(float(fps) * HIGHPASS_SECONDS)) | 1)
    return x - uniform_filter1d(x, win, axis=0, mode="nearest")


PEAK_TOLERANCE = 0.05       # lags this close to the best are all candidates
MAX_PEAKS = 8


def match_offset(source_fp: np.ndarray, suspect_fp: np.ndarray, fps: Fraction) -> OffsetMatch | None:
    peaks = match_offsets(source_fp, suspect_fp, fps)
    return peaks[0] if peaks else None


def match_offsets(source_fp: np.ndarray, suspect_fp: np.ndarray, fps: Fraction) -> list[OffsetMatch]:
    """Candidate lags of the suspect inside the source, best first (partial overlaps
    allowed down to MIN_OVERLAP_SECONDS or the shorter of the two).

    Looping content (test patterns, a static shot) correlates almost as well at
    several lags: every peak within PEAK_TOLERANCE of the best (overlap-weighted) is
    returned, at least a second apart, up to MAX_PEAKS, and the watermark decides
    between them (trace.py)."""
    shown = ~np.isnan(suspect_fp).any(axis=0)       # blocks a crop hypothesis can see
    a, b = _prepare(source_fp[:, shown], fps), _prepare(suspect_fp[:, shown], fps)
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return []
    min_overlap = max(1, min(na, nb, int(float(fps) * MIN_OVERLAP_SECONDS)))
    size = 1 << int(np.ceil(np.log2(na + nb)))
    spec = (np.fft.rfft(a, size, axis=0) * np.conj(np.fft.rfft(b, size, axis=0))).sum(axis=1)
    corr = np.fft.irfft(spec, size)                    # corr[d] = sum_t a[t+d] . b[t]
    ea = np.concatenate([[0.0], np.cumsum((a * a).sum(axis=1))])
    eb = np.concatenate([[0.0], np.cumsum((b * b).sum(axis=1))])
    lags = np.arange(-(nb - min_overlap), na - min_overlap + 1)
    t0 = np.maximum(0, -lags)
    t1 = np.minimum(nb, na - lags)
    denom = np.sqrt((eb[t1] - eb[t0]) * (ea[t1 + lags] - ea[t0 + lags]))
    num = corr[lags % size]
    ncc = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    # Rank lags by correlation weighted with how much of the suspect they explain: on
    # looping content (a slowly turning night sky) every period correlates alike, and a
    # leak sits inside the video, so lags that leave part of it unexplained come last.
    rank = ncc * (t1 - t0) / min(na, nb)
    order = np.argsort(-rank)
    top = float(rank[order[0]])
    # Dark, noisy or flat content keeps little motion after a re-encode, so its true
    # peak can be low in absolute terms (0.2) yet stand far above every other lag:
    # that distance, in robust standard deviations, says "this video" better than
    # any fixed correlation floor.
    centre = float(np.median(ncc))
    spread = 1.4826 * float(np.median(np.abs(ncc - centre))) or 1e-9
    sep = max(1, int(float(fps)))
    peaks: list[OffsetMatch] = []
    for i in order:
        if rank[i] < top - PEAK_TOLERANCE or len(peaks) >= MAX_PEAKS:
            break
        if all(abs(int(lags[i]) - p.offset_frames) >= sep for p in peaks):
            peaks.append(OffsetMatch(int(lags[i]), float(ncc[i]), int(t1[i] - t0[i]),
                                     round((float(ncc[i]) - centre) / spread, 2)))
    return peaks


def locate_frame(source_fp: np.ndarray, frame: np.ndarray, near: int, radius: int = 8) -> int:
    """Index (within `radius` of `near`) of the fingerprint row closest to `frame`'s blocks:
    checks where an input-side seek really landed."""
    target = block_means(frame, FP_ROWS, FP_COLS).ravel()
    lo, hi = max(0, near - radius), min(len(source_fp), near + radius + 1)
    if lo >= hi:
        return near
    d = np.abs(source_fp[lo:hi] - target[None, :]).mean(axis=1)
    return lo + int(np.argmin(d))
