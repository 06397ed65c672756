"""Where the suspect's picture sits in the source's: scale and a small crop.

Model: the suspect shows the source rectangle [x0, x0+cw] x [y0, y0+ch] (in source
analysis pixels, edge coordinates), resized to the suspect's size. Plain downscales
are cw = width, x0 = 0; a 5 % crop is cw ~ 0.95 width somewhere inside.

Search: for each candidate rectangle size, the suspect frames are resized to it and
slid over the source frames (FFT cross-correlation of high-passed images, normalised
per position); the best summed correlation wins. A coarse grid of sizes (same aspect
as the suspect), then each axis refined on its own, then a parabolic sub-pixel peak.
The watermark readout fine-tunes the translation further (readout.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter, zoom

REG_WIDTH = 320                 # registration works at this source width
HIGHPASS_SIGMA = 3.0
COARSE_FRACTIONS = np.round(np.arange(1.0, 0.795, -0.01), 3)
FINE_STEP, FINE_SPAN = 0.0025, 4


@dataclass(frozen=True)
class Placement:
    """Suspect frame -> source rectangle, in source analysis pixels."""
    x0: float
    y0: float
    cw: float
    ch: float
    score: float = 1.0

    def as_dict(self, aw: int, ah: int) -> dict:
        return {"crop_x": round(float(self.x0) / aw, 4), "crop_y": round(float(self.y0) / ah, 4),
                "crop_width": round(float(self.cw) / aw, 4), "crop_height": round(float(self.ch) / ah, 4),
                "registration_score": round(float(self.score), 4)}


def full_frame(aw: int, ah: int) -> Placement:
    return Placement(0.0, 0.0, float(aw), float(ah))


def warp_matrix(n_dst: int, n_src: int, origin: float, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """(n_dst, n_src) linear resampling of a suspect axis onto a source axis, plus the
    mask of destination pixels that fall inside the suspect picture."""
    scale = n_src / extent                        # suspect pixels per source pixel
    pos = (np.arange(n_dst) + 0.5 - origin) * scale - 0.5
    valid = (pos >= -0.5) & (pos <= n_src - 0.5)
    support = max(1.0, scale)                     # widen the tent when shrinking
    x = np.arange(n_src)[None, :]
    w = np.clip(1.0 - np.abs(x - pos[:, None]) / support, 0.0, None)
    sums = w.sum(axis=1, keepdims=True)
    w = np.where(sums > 0, w / np.where(sums > 0, sums, 1.0), 0.0)
    w[~valid] = 0.0
    return w.astype(np.float32), valid


@dataclass(frozen=True)
class Warp:
    """One placement's resampling of suspect-sized images onto the source grid, built
    once and applied to every segment's sum. Sparse (a few taps per row): as dense
    products, warping cost ~40 ms per segment and was a fifth of a trace."""
    rows: sparse.csr_matrix
    cols: sparse.csr_matrix
    mask: np.ndarray                  # source pixels that fall inside the suspect picture

    @classmethod
    def of(cls, p: Placement, suspect_shape: tuple[int, int], aw: int, ah: int) -> "Warp":
        sh, sw = suspect_shape
        wy, vy = warp_matrix(ah, sh, p.y0, p.ch)
        wx, vx = warp_matrix(aw, sw, p.x0, p.cw)
        return cls(sparse.csr_matrix(wy), sparse.csr_matrix(wx), np.outer(vy, vx))

    def apply(self, image: np.ndarray) -> np.ndarray:
        rows = self.rows @ image.astype(np.float32, copy=False)           # (ah, sw)
        return np.ascontiguousarray((self.cols @ rows.T).T, dtype=np.float32)


def _hp(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    return x - gaussian_filter(x, HIGHPASS_SIGMA)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Edge-aligned bilinear resize (the suspect picture spans the whole rectangle)."""
    if img.shape == (h, w):
        return img.astype(np.float32)
    if img.shape[0] > 2 * h or img.shape[1] > 2 * w:   # shrink by area first: no aliasing
        fy, fx = max(1, img.shape[0] // h), max(1, img.shape[1] // w)
        hh, ww = img.shape[0] // fy * fy, img.shape[1] // fx * fx
        img = img[:hh, :ww].reshape(hh // fy, fy, ww // fx, fx).mean(axis=(1, 3))
    return zoom(img.astype(np.float32), (h / img.shape[0], w / img.shape[1]), order=1,
                grid_mode=True, mode="nearest")


class _Search:
    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], aw: int, ah: int):
        self.r = min(1.0, REG_WIDTH / aw)
        self.W, self.H = max(8, int(round(aw * self.r))), max(8, int(round(ah * self.r)))
        self.src = [_hp(_resize(s.astype(np.float32), self.W, self.H)) for _, s in pairs]
        # Suspect frames pre-shrunk to about the registration scale once, not per candidate.
        sh, sw = pairs[0][0].shape
        k = min(1.0, self.H / sh)
        self.sus = [_resize(sus.astype(np.float32), max(8, int(round(sw * k))), max(8, int(round(sh * k))))
                    for sus, _ in pairs]
        self.src_f = [np.fft.rfft2(s) for s in self.src]
        self.src_e = [np.fft.rfft2(s * s) for s in self.src]

    def evaluate(self, fw: float, fh: float) -> tuple[float, Placement]:
        """Best placement (in analysis pixels) for a crop of about fw x fh (fractions)."""
        cw, ch = int(round(fw * self.W)), int(round(fh * self.H))
        if cw < 8 or ch < 8 or cw > self.W or ch > self.H:
            return -1.0, Placement(0, 0, 1, 1, -1.0)
        total = np.zeros((self.H - ch + 1, self.W - cw + 1))
        box = np.zeros((self.H, self.W), np.float32)
        box[:ch, :cw] = 1.0
        box_f = np.conj(np.fft.rfft2(box))
        for sus, sf, se in zip(self.sus, self.src_f, self.src_e):
            t = _hp(_resize(sus, cw, ch))
            t -= t.mean()
            tn = float(np.sqrt((t * t).sum()))
            if tn == 0:
                continue
            pad = np.zeros((self.H, self.W), np.float32)
            pad[:ch, :cw] = t
            corr = np.fft.irfft2(sf * np.conj(np.fft.rfft2(pad)), s=(self.H, self.W))
            energy = np.fft.irfft2(se * box_f, s=(self.H, self.W))
            c = corr[:self.H - ch + 1, :self.W - cw + 1]
            e = np.sqrt(np.clip(energy[:self.H - ch + 1, :self.W - cw + 1], 1e-6, None))
            total += c / (tn * e)
        total /= max(1, len(self.sus))
        iy, ix = np.unravel_index(int(np.argmax(total)), total.shape)
        dy = _parabolic(total[:, ix], iy)
        dx = _parabolic(total[iy, :], ix)
        score = float(total[iy, ix])
        # Positions and sizes are in registration pixels; r scales them to analysis ones.
        return score, Placement((ix + dx) / self.r, (iy + dy) / self.r, cw / self.r, ch / self.r, score)


def _parabolic(line: np.ndarray, i: int) -> float:
    if i <= 0 or i >= len(line) - 1:
        return 0.0
    a, b, c = line[i - 1], line[i], line[i + 1]
    d = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / d, -0.5, 0.5)) if d < 0 else 0.0


def register(pairs: list[tuple[np.ndarray, np.ndarray]], aw: int, ah: int) -> Placement:
    """Estimate the placement from (suspect frame, source frame) pairs of equal instants."""
    if not pairs:
        return full_frame(aw, ah)
    search = _Search(pairs, aw, ah)
    sh, sw = pairs[0][0].shape
    aspect = (sw / sh) / (aw / ah)                # fw / fh keeping the suspect's aspect
    best = (-2.0, 1.0, 1.0, full_frame(aw, ah))
    for f in COARSE_FRACTIONS:
        fw, fh = (f, f / aspect) if aspect >= 1 else (f * aspect, f)
        score, placement = search.evaluate(fw, fh)
        if score > best[0]:
            best = (score, fw, fh, placement)
    for axis in (0, 1):                            # refine width, then height
        fw0, fh0 = best[1], best[2]
        for k in range(-FINE_SPAN, FINE_SPAN + 1):
            fw = fw0 + k * FINE_STEP if axis == 0 else fw0
            fh = fh0 + k * FINE_STEP if axis == 1 else fh0
            if k == 0 or fw > 1.0 + 1e-9 or fh > 1.0 + 1e-9:
                continue
            score, placement = search.evaluate(fw, fh)
            if score > best[0]:
                best = (score, fw, fh, placement)
    return best[3]
