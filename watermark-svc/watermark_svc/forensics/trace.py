"""Trace a suspect copy: metadata tag first, then identify, register, read, score.

Pure orchestration over a `Catalogue` (where videos, fingerprints and sessions come
from), so the same code runs in the worker (database + file-svc) and in tests and
benchmarks (local files). The result is plain JSON-able data; evidence.py turns it
into the report.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from fractions import Fraction
from typing import Callable, Protocol

import numpy as np

from ..media.errors import InvalidMedia, VideoGone
from ..media.probe import MediaLimits, probe
from .detector import WatermarkGeometry, analysis_size
from .metadata import find_tags
from .readout import Alignment, Pattern, Source, Suspect, read_bits
from . import candidates, verdict
from .scoring import served_bits, votes
from .timing import OffsetMatch, match_offsets, suspect_fingerprints

METHOD_VERSION = "streamvault-forensics/1"
CATALOGUE_FLOOR = 0.30        # fingerprint correlation at or above this: a candidate...
CATALOGUE_MIN_SIGNIFICANCE = 6.0   # ...and so is a peak this many robust sigmas above other lags
# With no clear candidate, the single best peak at least this far out is still read. A
# cropped, rescaled copy of busy texture can keep only a ~5-sigma fingerprint peak, while
# unrelated test clips reached 2.3-4.6 sigma (measured offline): reading the closest video costs
# one readout, never an accusation, and its watermark settles it.
CATALOGUE_WEAK_SIGNIFICANCE = 4.0
MAX_CANDIDATES = 3            # videos whose watermark is actually read
DEFAULT_MAX_FAP = 1e-6
PROBE_SEGMENTS = 4            # segments read per candidate lag when the content loops

Progress = Callable[[float, str], None]


class Catalogue(Protocol):
    # Optionally also ensure_indexed() and index_lookup(keys) (the catalogue index,
    # candidates.py): without them every video is correlated, as a test double may want.
    def candidates(self) -> list[str]: ...
    def geometry(self, video_id: str) -> WatermarkGeometry: ...
    def source(self, video_id: str) -> Source: ...       # the source (or its analysis proxy), as it is read
    def fingerprint(self, video_id: str) -> np.ndarray: ...
    def session_ids(self, video_id: str) -> list[str]: ...
    def session_video(self, session_id: str) -> str | None: ...


def trace(suspect: str, catalogue: Catalogue, secret: bytes, *, video_id: str | None = None,
          max_fap: float = DEFAULT_MAX_FAP, progress: Progress = lambda pct, step: None,
          limits: MediaLimits | None = None) -> dict:
    started = time.monotonic()
    result: dict = {"method": METHOD_VERSION, "threshold": max_fap, "video_id": video_id,
                    "match": None, "false_accusation_probability": None, "segments_read": 0}
    progress(1, "metadata")
    tags = find_tags(suspect, secret)
    result["metadata_layer"] = {"tags_found": len(tags), "valid": [t.session_id for t in tags if t.valid],
                                "invalid": len([t for t in tags if not t.valid])}
    for tag in tags:
        if tag.valid and catalogue.session_video(tag.session_id):
            result.update(method_used="metadata", video_id=catalogue.session_video(tag.session_id),
                          match={"session_id": tag.session_id, "tag_issued_at": tag.issued_at},
                          false_accusation_probability=0.0,
                          verdict="match", conclusion="exact match: intact session tag with a valid MAC")
            result["elapsed_seconds"] = round(time.monotonic() - started, 2)
            return result

    info = probe(suspect, limits)              # InvalidMedia for non-videos and limit violations
    result["suspect"] = {"width": info.width, "height": info.height, "duration": info.duration_s,
                         "fps": float(info.fps), "video_codec": info.video_codec}
    fps_groups: dict = {}

    def fingerprints_at(fps) -> dict:
        # One decode per frame rate: the index's and the candidates' usually share it.
        if fps not in fps_groups:
            expected = int(info.duration_s * float(fps))
            # Memory is bounded by what the probed duration allows, whatever the file claims
            # elsewhere (the fps filter cannot invent more frames than this).
            fps_groups[fps] = suspect_fingerprints(suspect, fps, expected_frames=expected,
                                                   progress=lambda f: progress(3 + 12 * f, "fingerprint"),
                                                   max_frames=int(expected * 1.02) + 2 * int(fps) + 2)
        return fps_groups[fps]

    progress(3, "fingerprint")
    timings: dict = {}
    result["timings"] = timings
    t_identify = time.monotonic()
    by_index: set[str] = set()        # videos the index's vote alone names (candidates.py)
    if video_id:
        videos = [video_id]
    else:
        # The catalogue index's short list, not every video (candidates.py).
        found = candidates.search(catalogue, Fraction(info.fps).limit_denominator(1001), fingerprints_at)
        videos, by_index = found.video_ids, set(found.decisive)
        result["index"] = found.report
        timings["candidate_search"] = round(time.monotonic() - t_identify, 2)
    if not videos:
        searched = result.get("index") or {}
        why = ("the copy matches none of our videos (no catalogue index match)"
               if searched.get("used") and not searched.get("full_scan") else "the catalogue has no processed videos")
        return _no_match(result, why, started)

    # Identify: fingerprint correlation against each candidate (fingerprints cached).
    ranked = []
    for n, vid in enumerate(videos):
        try:
            g = catalogue.geometry(vid)
            source_fp = catalogue.fingerprint(vid)
        except VideoGone:
            if video_id:
                raise                     # the one video asked for: say it is gone
            continue                      # deleted since the catalogue was listed: not a source
        # One match per crop hypothesis; the one whose best lag stands out most wins.
        tries = [match_offsets(source_fp, fp, g.fps) for fp in fingerprints_at(g.fps).values()]
        peaks = max((t for t in tries if t), key=lambda t: t[0].significance, default=None)
        if peaks:
            ranked.append((peaks[0].ncc, vid, peaks))
        progress(15 + 15 * (n + 1) / len(videos), "identify")
    # Which videos are worth reading: a clear fingerprint peak, by correlation or by how
    # far it stands out, or a video the index's vote alone names (looping content, whose
    # fingerprint correlates alike at every period: its peaks are then the lags the
    # watermark decides between). A wrong candidate costs time, never an accusation (the
    # watermark of a wrong video reads as noise); a missed one costs the trace.
    def plausible(r) -> bool:
        return (r[0] >= CATALOGUE_FLOOR or r[2][0].significance >= CATALOGUE_MIN_SIGNIFICANCE
                or r[1] in by_index)
    keep = [bool(video_id) or plausible(r) for r in ranked]               # named: always read
    accepted = sorted((r for r, k in zip(ranked, keep) if k), key=lambda r: -r[2][0].significance)
    ranked = accepted + sorted((r for r, k in zip(ranked, keep) if not k), key=lambda r: -r[0])
    result["identification"] = [{"video_id": vid, "correlation": round(ncc, 4),
                                 "significance": peaks[0].significance, "named_by_index": vid in by_index,
                                 "offset_frames": [p.offset_frames for p in peaks]}
                                for ncc, vid, peaks in ranked[:5]]
    to_read, sessions_of = _watched_first(accepted, catalogue)
    chosen = to_read[:MAX_CANDIDATES]
    timings["identify"] = round(time.monotonic() - t_identify, 2)
    t_read = time.monotonic()
    weak = None
    if not chosen:
        closest = max(ranked, key=lambda r: r[2][0].significance, default=None)
        if closest is None or closest[2][0].significance < CATALOGUE_WEAK_SIGNIFICANCE:
            return _no_match(result, "the copy matches none of our videos", started)
        chosen, weak = [closest], closest
    # Near-duplicates (shared footage): the fingerprint cannot choose, so every close
    # candidate is read in full and the watermark decides (verdict.py). Otherwise the first
    # accusation ends the reading, as a less plausible video cannot change it.
    ambiguous = verdict.near_duplicates([r[2][0].significance for r in accepted])
    unread = [vid for _, vid, _ in to_read[MAX_CANDIDATES:]] if ambiguous else []

    # Every session of every video we read is tested: that is the Bonferroni count.
    sessions = {vid: sessions_of[vid] if vid in sessions_of else catalogue.session_ids(vid) for _, vid, _ in chosen}
    tested = sum(len(s) for s in sessions.values())
    attempts = []
    for k, (ncc, vid, peaks) in enumerate(chosen):
        lo, hi = 30 + 60 * k / len(chosen), 30 + 60 * (k + 1) / len(chosen)
        attempt = _read_candidate(suspect, info, catalogue, secret, vid, ncc, peaks, fps_groups,
                                  sessions[vid], tested, max_fap, lambda pct, step: progress(lo + (hi - lo) * pct, step))
        attempts.append(attempt)
        if attempt["accused"] and not ambiguous:
            break
    progress(95, "score")
    timings["read_and_score"] = round(time.monotonic() - t_read, 2)
    decisive = [a for a in attempts if a["accused"]]
    present = sorted((a for a in attempts if a["watermark_present"]), key=lambda a: a["presence_p"])
    best = decisive[0] if decisive else present[0] if present else attempts[0]
    result.update(video_id=best["video_id"], robust=best, sessions_tested=tested,
                  segments_read=best["segments_read"], attempts=len(attempts),
                  ambiguity=verdict.ambiguity(best, attempts, unread) if ambiguous else None,
                  candidates=[{k: a[k] for k in ("video_id", "correlation", "significance", "segments_read",
                                                  "watermark_present", "presence_p")}
                              | {"decisive": bool(a["accused"])} for a in attempts])
    if best["best"] is not None:
        result["false_accusation_probability"] = best["best"]["false_accusation"]
    if len(decisive) > 1:
        named = "; ".join(f"session {a['accused'][0]['session_id']} of video {a['video_id']}" for a in decisive)
        result.update(method_used="watermark", match=None, verdict="inconclusive",
                      inconclusive={"best_candidate": None, "candidates": [
                          {"video_id": a["video_id"], "session_id": a["accused"][0]["session_id"],
                           "false_accusation_probability": a["accused"][0]["false_accusation"]} for a in decisive],
                          "explanation": (f"inconclusive: the watermarks of {len(decisive)} candidate videos each "
                                          f"match a session ({named}); no one is accused")})
        result["conclusion"] = result["inconclusive"]["explanation"]
        result["elapsed_seconds"] = round(time.monotonic() - started, 2)
        return result
    if decisive:
        top = best["accused"][0]
        served = served_bits(secret, top["session_id"], [s["index"] for s in best["segments"]],
                             catalogue.geometry(best["video_id"]).code(best["video_id"])).tolist()
        result.update(method_used="watermark", match={"session_id": top["session_id"]}, verdict="match",
                      also_accused=[a["session_id"] for a in best["accused"][1:]],
                      conclusion=verdict.match_words(best["accused"], tested, max_fap))
        for seg, bit in zip(best["segments"], served):
            seg["served"] = "A" if bit == 0 else "B"
            seg["agrees"] = (seg["z"] > 0) == (bit == 0)
        result["elapsed_seconds"] = round(time.monotonic() - started, 2)
        return result
    if best["watermark_present"]:
        g = catalogue.geometry(best["video_id"])
        n_seg = g.frames_per_segment
        result.update(method_used="watermark", match=None, verdict="inconclusive",
                      inconclusive=verdict.inconclusive(best, max_fap, n_seg / float(g.fps),
                                                        -(-len(catalogue.fingerprint(best["video_id"])) // n_seg)))
        result["conclusion"] = result["inconclusive"]["explanation"]
        result["elapsed_seconds"] = round(time.monotonic() - started, 2)
        return result
    why = ("no session's codeword matches strongly enough" if best["sessions_tested"]
           else "nobody has watched this video")
    if best["segments"]:
        why += " and the video's watermark was not found in the copy"
    if weak:
        why = (f"the copy matches none of our videos clearly; the closest ({weak[1]}, fingerprint peak "
               f"{weak[2][0].significance} robust σ) was read and {why}")
    return _no_match(result, why, started)


def _watched_first(accepted: list, catalogue: Catalogue) -> tuple[list, dict[str, list[str]]]:
    """The candidates in reading order, and the sessions of those looked up. Only
    MAX_CANDIDATES are read, and a video nobody has watched cannot have leaked through a
    stream (no session, no codeword to find): the watched come first, each group by
    significance. On a catalogue where one footage was uploaded several times, the watched
    upload is then read, not unwatched twins that can only say "no match". Sessions are
    looked up only until enough watched videos are found (a shared intro can match dozens)."""
    watched, unwatched, sessions_of = [], [], {}
    for k, r in enumerate(accepted):
        if len(watched) == MAX_CANDIDATES:
            return watched + unwatched + accepted[k:], sessions_of
        sessions_of[r[1]] = catalogue.session_ids(r[1])
        (watched if sessions_of[r[1]] else unwatched).append(r)
    return watched + unwatched, sessions_of


def _read_candidate(suspect: str, info, catalogue: Catalogue, secret: bytes, vid: str, ncc: float,
                    peaks: list[OffsetMatch], fps_groups: dict, session_ids: list[str], tested: int,
                    max_fap: float, progress: Progress) -> dict:
    """Align, read and score one candidate video: the attempt's evidence as plain data."""
    g = catalogue.geometry(vid)
    sus_fp = fps_groups[g.fps][0.0]           # the plain fingerprint (seek checks)
    aw, ah = analysis_size(g, info.height)
    copy = Suspect(suspect, len(sus_fp), (info.width, info.height), fingerprint=sus_fp)
    source = catalogue.source(vid)
    pattern = Pattern(secret, vid, g, aw, ah)
    m = _pick_lag(peaks, copy, source, pattern, lambda f: progress(0.2 * f, "align"))
    readout = read_bits(copy, source, pattern, Alignment(m.offset_frames),
                        progress=lambda f: progress(0.2 + 0.8 * f, "read watermark"))
    frames = len(sus_fp)
    idx = [b.index for b in readout.bits]
    z = np.array([b.z for b in readout.bits])
    code = g.code(vid)
    scores, found = verdict.accuse(z, idx, session_ids, secret, tested, max_fap, code)
    fps = float(g.fps)
    p_present = verdict.presence_p(z, verdict.readout_hypotheses(len(peaks)))
    accused = [asdict(s) for s in found]
    return {
        "video_id": vid, "codeword_scheme": code.scheme, "correlation": round(ncc, 4),
        "significance": m.significance,
        "offset_frames": m.offset_frames, "offset_seconds": round(m.offset_frames / fps, 3),
        "window_seconds": [round(max(0, m.offset_frames) / fps, 2),
                           round((m.offset_frames + frames) / fps, 2)],
        "placement": {**readout.placement.as_dict(aw, ah), "shift_px": list(readout.shift)},
        "frames_compared": readout.frames_compared,
        "segments_read": len(idx), "sessions_tested": len(session_ids),
        "watermark_energy": round(readout.energy, 1),
        "presence_p": float(f"{p_present:.3g}"), "watermark_present": p_present <= verdict.PRESENCE_MAX_P,
        "min_abs_z": round(float(np.abs(z).min()), 2) if len(z) else None,
        "median_abs_z": round(float(np.median(np.abs(z))), 2) if len(z) else None,
        "segments": [{"index": i, "z": round(float(v), 2)} for i, v in zip(idx, z)],
        "best": asdict(scores[0]) if scores else None,
        "runner_up": asdict(scores[1]) if len(scores) > 1 else None,
        "tied_with_best": sum(1 for s in scores[1:] if s.score == scores[0].score) if scores else 0,
        "accused": accused,
        # Only for the inconclusive verdict; from the unrounded z (the weights scoring used).
        "segments_to_decide": (verdict.segments_to_decide(votes(z, idx, secret, code), scores[0].score, tested,
                                                          max_fap) if scores and not accused else None),
    }


def _pick_lag(peaks: list[OffsetMatch], copy: Suspect, source: Source, pattern: Pattern,
              progress) -> OffsetMatch:
    """Between near-equal fingerprint lags, the one where the watermark is: read a few
    segments from the middle of the suspect at each and keep the most watermark energy
    (sum of z^2, blind to the bits' signs, so no session is favoured)."""
    if len(peaks) == 1:
        return peaks[0]
    n = pattern.geometry.frames_per_segment
    mid = max(0, copy.frames // 2 - PROBE_SEGMENTS * n // 2)
    best, best_energy = peaks[0], -1.0
    for i, p in enumerate(peaks):
        try:
            r = read_bits(copy, source, pattern,
                          Alignment(p.offset_frames, start=mid, max_frames=(PROBE_SEGMENTS + 1) * n))
        except InvalidMedia:
            continue
        energy = r.energy / max(1, len(r.bits))
        if energy > best_energy:
            best, best_energy = p, energy
        progress((i + 1) / len(peaks))
    return best


def _no_match(result: dict, why: str, started: float) -> dict:
    result.update(method_used="none", match=None, verdict="no_match", conclusion=f"no match: {why}")
    result["elapsed_seconds"] = round(time.monotonic() - started, 2)
    return result


__all__ = ["Catalogue", "InvalidMedia", "trace"]
