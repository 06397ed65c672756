"""Read one soft bit per segment from a registered suspect.

One pass over the suspect (resampled to the source frame rate) and the matching
stretch of the pristine source: per source segment s we accumulate the ramp-weighted
sum of suspect frames (in the suspect's own geometry) and of source frames. The
spatial placement is estimated afterwards from a few frame pairs kept on the way,
and applied to the *sums* (resampling is linear), so frames are warped 60 times
per 2 minutes instead of 3600.

Each segment's residual (placed suspect sum - source sum, inside the visible area)
is correlated with the keyed pattern; detector.segment_z turns it into a z-score
against the residual's own correlation with far-shifted patterns. A final
translation search picks the shift (<= SHIFT_RADIUS px) with the most watermark energy,
sum of z^2 over segments: that statistic ignores the bits' signs, so choosing it
cannot favour any session's codeword (scoring.py relies on that). The search is wide
enough to absorb a picture registration fooled by motion: on content that scrolls, a
crop and a few frames of time lag look alike, the picture cannot tell them apart, but
the watermark (fixed to the frame) can.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..media.errors import InvalidMedia
from ..media.wmpattern import blur_sigma, ramp_weights, resize_pattern, segment_pattern
from .detector import NULL_GUARD_SIGMAS, SoftBit, WatermarkGeometry
from .frames import GrayFrames
from .spatial import Placement, Warp, full_frame, register
from .timing import locate_frame

REG_PAIRS = 16          # frame pairs kept for spatial registration
SHIFT_RADIUS = 12       # +/- px of translation search by watermark energy (analysis px)
SEEK_MARGIN = 8         # frames decoded before the window to verify the seek


@dataclass
class Readout:
    bits: list[SoftBit]
    placement: Placement
    shift: tuple[int, int]
    frames_compared: int
    analysis_size: tuple[int, int]
    energy: float = 0.0
    notes: list[str] = field(default_factory=list)


def suspect_analysis_size(sus_w: int, sus_h: int, ah: int) -> tuple[int, int]:
    h = min(ah, sus_h) & ~1
    return max(2, int(round(h * sus_w / sus_h)) & ~1), max(2, h)


@dataclass(frozen=True)
class Pattern:
    """What a video's keyed watermark pattern is built from, and the analysis size
    (source pixels scaled to ``height``) at which it is compared."""
    secret: bytes
    video_id: str
    geometry: WatermarkGeometry
    width: int
    height: int


@dataclass(frozen=True)
class Source:
    """The pristine source (or its analysis proxy) and its fingerprint (seek checks)."""
    path: str
    fingerprint: np.ndarray
    color: str = ""         # an HDR/wide-gamut original read directly (a proxy is converted already)
    decoder: str = ""       # the original's picture decoder (a proxy: ffmpeg's)


@dataclass(frozen=True)
class Suspect:
    """The suspect copy: its frame count at the source rate, its size in pixels, and its
    plain fingerprint (needed only to verify a seek into the suspect)."""
    path: str
    frames: int
    size: tuple[int, int]
    fingerprint: np.ndarray | None = None


@dataclass(frozen=True)
class Alignment:
    """Where the suspect sits in the source: suspect frame k shows source frame k + offset.
    ``start``/``max_frames`` limit the read to a stretch of the suspect."""
    offset: int
    start: int = 0
    max_frames: int | None = None


def read_bits(suspect: Suspect, source: Source, pattern: Pattern, alignment: Alignment,
              progress=None) -> Readout:
    """Soft bits of every source segment the suspect covers (within the alignment's
    stretch; a stretch that does not start at 0 needs the suspect's fingerprint)."""
    geometry, aw, ah, offset = pattern.geometry, pattern.width, pattern.height, alignment.offset
    suspect_fp, source_fp = suspect.fingerprint, source.fingerprint
    n_seg = geometry.frames_per_segment
    weights = ramp_weights(n_seg, geometry.ramp_frames).astype(np.float32)
    sw, sh = suspect_analysis_size(*suspect.size, ah)
    sus_start = max(0, -offset, alignment.start)         # first suspect frame compared
    src_first = sus_start + offset                # the source frame it shows
    seek = max(0, src_first - SEEK_MARGIN)
    sus_seek = max(0, sus_start - SEEK_MARGIN) if suspect_fp is not None else 0
    total = max(1, min(suspect.frames - sus_start, alignment.max_frames or suspect.frames))

    sums: dict[int, list] = {}                    # seg -> [sus_sum, src_sum, count]
    keep_every = max(1, (total // n_seg + 1) // REG_PAIRS)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    compared = 0
    with GrayFrames(source.path, aw, ah, geometry.fps, start_frame=seek, color=source.color,
                    viewed=(geometry.pattern_width, geometry.pattern_height),
                    video_decoder=source.decoder) as src_frames, \
            GrayFrames(suspect.path, sw, sh, geometry.fps, start_frame=sus_seek) as sus_frames:
        src_it, sus_it = iter(src_frames), iter(sus_frames)
        first = next(src_it, None)
        if first is None:
            raise InvalidMedia("the source could not be decoded at the matched position")
        at = locate_frame(source_fp, first, seek)  # where the seek really landed
        sus_at = 0
        if sus_seek:
            sus_first = next(sus_it, None)
            if sus_first is None:
                raise InvalidMedia("the suspect ended before the probed stretch")
            sus_at = locate_frame(suspect_fp, sus_first, sus_seek) + 1
        # Both seeks are verified above; now advance both streams to one common instant:
        # suspect frame k next to source frame k + offset.
        k = max(sus_start, sus_at, at - offset)
        cur = first
        while at < k + offset:
            cur = next(src_it, None)
            if cur is None:
                raise InvalidMedia("the source ended before the matched position")
            at += 1
        for _ in range(k - sus_at):
            if next(sus_it, None) is None:
                break
        n = at
        tmp_sus, tmp_src = np.empty((sh, sw), np.float32), np.empty((ah, aw), np.float32)
        while cur is not None and compared < total:
            sus = next(sus_it, None)
            if sus is None:
                break
            seg, f = divmod(n, n_seg)
            entry = sums.get(seg)
            if entry is None:
                entry = sums[seg] = [np.zeros((sh, sw), np.float32), np.zeros((ah, aw), np.float32), 0]
            np.multiply(sus, weights[f], out=tmp_sus)
            entry[0] += tmp_sus
            np.multiply(cur, weights[f], out=tmp_src)
            entry[1] += tmp_src
            entry[2] += 1
            if f == n_seg // 2 and (seg % keep_every == 0) and len(pairs) < REG_PAIRS:
                pairs.append((sus.copy(), cur.copy()))
            compared += 1
            n += 1
            if progress and compared % 100 == 0:
                progress(min(1.0, compared / total))
            cur = next(src_it, None)
    if compared == 0:
        raise InvalidMedia("no frames of the suspect overlap the source")

    guard = NULL_GUARD_SIGMAS * blur_sigma(geometry.pattern_height) * ah / geometry.pattern_height
    # The picture registration can be fooled: a dark, flat or grainy picture has no
    # detail that survives the re-encode and it then "finds" a nonsense crop. The
    # untouched full frame is always tried as well and the watermark energy decides.
    candidates = [register(pairs, aw, ah), full_frame(aw, ah)]
    best = None
    spectra: dict[int, np.ndarray] = {}            # the keyed patterns, shared by the placements
    for candidate in candidates:
        xcorrs = _segment_zmaps(sums, candidate, pattern, guard, spectra)
        if not xcorrs:
            raise InvalidMedia("the suspect overlaps no whole segment of the source")
        energy = sum(z ** 2 for _, z in xcorrs)          # (2R+1)^2 map of summed z^2
        if best is None or float(energy.max()) > best[0]:
            best = (float(energy.max()), candidate, xcorrs, energy)
    _, placement, xcorrs, energy = best
    dy, dx = np.unravel_index(int(np.argmax(energy)), energy.shape)
    bits = [SoftBit(seg, float(z[dy, dx])) for seg, z in xcorrs]
    shift = (int(dx) - SHIFT_RADIUS, int(dy) - SHIFT_RADIUS)
    return Readout(bits, placement, shift, compared, (aw, ah), float(energy[dy, dx]))


def _segment_zmaps(sums: dict, placement: Placement, pattern: Pattern, guard: float,
                   spectra: dict[int, np.ndarray]) -> list:
    """(segment, z map over shifts) for every segment with enough frames, placed as given.
    spectra caches each segment's keyed pattern (as its conjugate spectrum) across calls."""
    geometry, aw, ah = pattern.geometry, pattern.width, pattern.height
    min_frames = max(1, geometry.frames_per_segment // 4)
    out = []
    warp = None
    for seg in sorted(sums):
        sus_sum, src_sum, count = sums[seg]
        if count < min_frames:
            continue
        if warp is None:
            warp = Warp.of(placement, sus_sum.shape, aw, ah)
        placed, mask = warp.apply(sus_sum), warp.mask
        residual = np.where(mask, placed - src_sum, 0.0)
        residual[mask] -= residual[mask].mean()     # re-encodes shift brightness
        if seg not in spectra:
            keyed = resize_pattern(segment_pattern(pattern.secret, pattern.video_id, seg,
                                                   geometry.pattern_width, geometry.pattern_height), aw, ah)
            spectra[seg] = np.conj(np.fft.rfft2(keyed))
        out.append((seg, _zmap(residual, spectra[seg], guard)))
    return out


def _zmap(residual: np.ndarray, pattern_spectrum: np.ndarray, guard_px: float) -> np.ndarray:
    """z-scores of the residual/pattern correlation at shifts within SHIFT_RADIUS,
    standardised by the correlation at far shifts (the null, as in detector.segment_z).
    pattern_spectrum: the conjugate 2-D spectrum of the keyed pattern."""
    spec = np.fft.rfft2(residual) * pattern_spectrum
    xcorr = np.fft.irfft2(spec, s=residual.shape)
    h, w = xcorr.shape
    g = int(np.ceil(guard_px)) + SHIFT_RADIUS
    dy = np.minimum(np.arange(h), h - np.arange(h))[:, None]
    dx = np.minimum(np.arange(w), w - np.arange(w))[None, :]
    null = xcorr[(dy > g) | (dx > g)]
    spread = float(null.std()) or 1.0
    r = SHIFT_RADIUS
    near = np.roll(np.roll(xcorr, r, axis=0), r, axis=1)[:2 * r + 1, :2 * r + 1]
    return (near - null.mean()) / spread
