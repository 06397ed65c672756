"""Coarse, robust signatures of a video's fingerprint, quantised into hash keys for the
catalogue index (index.py).

Why these: the exact identification (timing.match_offsets) correlates the suspect with a
video's whole per-frame fingerprint, which is right but costs time in proportion to the
catalogue's minutes. To find *which few videos* deserve that, every SIGNATURE_STEP_S a
WINDOW_S window of fingerprint rows is averaged (averaging removes grain and the coding
noise of a re-encode) and described by comparisons between block means: "block i is
brighter than block j". An order between two blocks survives re-encoding, rescaling,
brightness and contrast changes and a frame-rate change (windows are in seconds, not
frames). Only inner blocks are used: the outer ring is what a crop of up to 10 % removes,
and suspect_fingerprints' crop hypotheses leave it NaN.

A key is KEY_BITS such comparisons (fixed pseudo-random block pairs, far enough apart to
differ clearly) and each window gets TABLES keys from independent pairs: a comparison
flipped by the attack spoils one key, not all. On the suspect's side the least certain
comparison of each key is also tried flipped (multi-probe), which recovers most keys a
single near-tie spoilt.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .timing import FP_COLS, FP_ROWS

SIGNATURE_VERSION = "sig1"      # stored with each indexed video: a change re-indexes
WINDOW_S = 2.0
STEP_S = 0.5
TABLES = 6
KEY_BITS = 20
MIN_PAIR_DISTANCE = 3.0         # blocks: neighbours differ too little on smooth content
PROBE_FLIPS = 1                 # suspect side: the least certain comparisons also tried flipped


def _inner_blocks() -> np.ndarray:
    grid = np.arange(FP_ROWS * FP_COLS).reshape(FP_ROWS, FP_COLS)
    return grid[1:-1, 1:-1].ravel()


def _pairs() -> np.ndarray:
    """(TABLES, KEY_BITS, 2) indices into the inner blocks; fixed for SIGNATURE_VERSION."""
    rng = np.random.default_rng(20260419)
    inner = _inner_blocks()
    rc = np.stack([inner // FP_COLS, inner % FP_COLS], axis=1).astype(float)
    out = np.zeros((TABLES, KEY_BITS, 2), np.int64)
    for t in range(TABLES):
        for b in range(KEY_BITS):
            while True:
                i, j = rng.choice(len(inner), 2, replace=False)
                if np.hypot(*(rc[i] - rc[j])) >= MIN_PAIR_DISTANCE:
                    out[t, b] = (i, j)
                    break
    return out


PAIRS = _pairs()
_WEIGHTS = (1 << np.arange(KEY_BITS)).astype(np.int64)


@dataclass(frozen=True)
class Signatures:
    keys: np.ndarray        # (n,) int64: table << KEY_BITS | comparison bits
    windows: np.ndarray     # (n,) int32: window number (start = window * STEP_S seconds)


def window_means(fp: np.ndarray, fps: Fraction, start_frame: float = 0.0) -> np.ndarray:
    """(windows, inner blocks): mean inner-block values of each WINDOW_S window starting every
    STEP_S seconds from start_frame. Rows with NaN (blocks a crop hypothesis cannot see)
    only touch the outer ring, which is left out."""
    rate = float(fps)
    win, step = max(1, round(WINDOW_S * rate)), STEP_S * rate
    inner = fp[:, _inner_blocks()].astype(np.float64)
    csum = np.concatenate([np.zeros((1, inner.shape[1])), np.cumsum(inner, axis=0)])
    starts = np.round(np.arange(start_frame, len(fp) - win + 1, step)).astype(np.int64)
    starts = starts[(starts >= 0) & (starts + win <= len(fp))]
    return (csum[starts + win] - csum[starts]) / win


def _bits_and_margins(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(windows, TABLES, KEY_BITS) comparison bits and their margins (|difference|)."""
    diff = means[:, PAIRS[..., 0]] - means[:, PAIRS[..., 1]]
    return diff > 0, np.abs(diff)


def _keys(bits: np.ndarray) -> np.ndarray:
    tables = np.arange(TABLES, dtype=np.int64)[None, :]
    return (bits.astype(np.int64) * _WEIGHTS).sum(axis=-1) | (tables << KEY_BITS)


def catalogue_signatures(fp: np.ndarray, fps: Fraction) -> Signatures:
    """What the index stores for a catalogue video: TABLES keys per window."""
    means = window_means(fp, fps)
    if not len(means):
        return Signatures(np.zeros(0, np.int64), np.zeros(0, np.int32))
    bits, _ = _bits_and_margins(means)
    keys = _keys(bits)
    windows = np.repeat(np.arange(len(means), dtype=np.int32), TABLES)
    return Signatures(keys.ravel(), windows)


def suspect_signatures(fps_by_crop: dict[float, np.ndarray], fps: Fraction) -> Signatures:
    """What a suspect looks up: its keys under every crop hypothesis, each window also with
    its PROBE_FLIPS least certain comparisons flipped. Windows start every STEP_S / 2 so that
    one of them is within a quarter step of any catalogue window (a leak starts anywhere);
    their numbers are in catalogue steps (halves allowed: window w starts at w * STEP_S s)."""
    keys, windows = [], []
    for fp in fps_by_crop.values():
        for half in (0.0, 0.5):
            means = window_means(fp, fps, start_frame=half * STEP_S * float(fps))
            if not len(means):
                continue
            bits, margins = _bits_and_margins(means)
            number = np.arange(len(means), dtype=np.float64) + half
            variants = [bits]
            order = np.argsort(margins, axis=-1)[..., :PROBE_FLIPS]
            for f in range(PROBE_FLIPS):
                flipped = bits.copy()
                np.put_along_axis(flipped, order[..., f:f + 1], ~np.take_along_axis(bits, order[..., f:f + 1], -1), -1)
                variants.append(flipped)
            for v in variants:
                keys.append(_keys(v).ravel())
                windows.append(np.repeat(number, TABLES))
    if not keys:
        return Signatures(np.zeros(0, np.int64), np.zeros(0, np.float64))
    return Signatures(np.concatenate(keys), np.concatenate(windows))
