"""Identification time against catalogue size, in process: the index's lookup and vote next
to the exhaustive fingerprint scan the trace used before it (match_offsets on every video
under every crop hypothesis).

Real sizes: the benchmark's own catalogue clips, first n distractors plus the traced videos.
Larger sizes: synthetic videos added to the index only, each a real distractor's
fingerprint with its blocks spatially permuted and its time rolled (other content, the
same statistics of motion and brightness, so the key distribution stays realistic). The
scan is timed on the real catalogue and its cost per catalogue minute extrapolated for the
synthetic sizes (marked as such).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from attacks import attack

from watermark_svc.forensics.detector import geometry_for_source
from watermark_svc.forensics.index import MemoryIndex, shortlist, vote
from watermark_svc.forensics.signatures import catalogue_signatures, suspect_signatures
from watermark_svc.forensics.timing import fingerprint, match_offsets, suspect_fingerprints

LEAK_ATTACK = "goal_crop5_360p_fps25_crf30"


def _fingerprints(sources: list[Path], log) -> dict[str, tuple[np.ndarray, object]]:
    out = {}
    for n, p in enumerate(sources):
        fps = geometry_for_source(str(p)).fps
        out[p.stem] = (fingerprint(str(p), fps), fps)
        if (n + 1) % 25 == 0:
            log(f"fingerprints: {n + 1}/{len(sources)}")
    return out


def _timed_search(idx: MemoryIndex, sus: dict, fps) -> tuple[float, list]:
    t0 = time.monotonic()
    q = suspect_signatures(sus, fps)
    ranked = vote(q, idx.lookup(q.keys))
    return time.monotonic() - t0, shortlist(ranked)


def _timed_scan(fps_of: dict, sus: dict) -> float:
    t0 = time.monotonic()
    for fp, fps in fps_of.values():
        for s in sus.values():
            match_offsets(fp, s, fps)
    return time.monotonic() - t0


def identification_scaling(sources: list[Path], leaks: dict[str, Path], tmp: Path, synthetic_hours: float,
                           traced_seconds: float, log=print) -> dict:
    fps_of = _fingerprints(sources, log)
    traced = [p.stem for p in sources if p.stem.startswith("t-")]
    distractors = [p.stem for p in sources if not p.stem.startswith("t-")]
    suspects = {}
    for kind, leak in leaks.items():
        copy = attack(leak, tmp / f"scaling-{kind}.mp4", LEAK_ATTACK, traced_seconds)
        fps = fps_of[f"t-{kind}"][1]
        suspects[f"t-{kind}"] = (suspect_fingerprints(str(copy), fps), fps)
    rows = []
    sizes = sorted({n for n in (10, 25, 50, len(distractors)) if n <= len(distractors)})
    for n in sizes:
        chosen = {k: fps_of[k] for k in distractors[:n] + traced}
        idx = MemoryIndex()
        for vid, (fp, fps) in chosen.items():
            idx.add(vid, catalogue_signatures(fp, fps))
        minutes = sum(len(fp) / float(fps) for fp, fps in chosen.values()) / 60
        search, scan, right = [], [], 0
        for vid, (sus, fps) in suspects.items():
            took, short = _timed_search(idx, sus, fps)
            search.append(took)
            right += bool(short) and short[0].video_id == vid
            scan.append(_timed_scan(chosen, sus))
        rows.append({"videos": len(chosen), "catalogue_minutes": round(minutes, 1), "index_rows": len(idx),
                     "index_search_s": round(float(np.median(search)), 4), "full_scan_s": round(float(np.median(scan)), 3),
                     "right_video_first": f"{right}/{len(suspects)}", "synthetic": False})
        log(f"identification at {len(chosen)} videos: {rows[-1]}")
    scan_per_minute = rows[-1]["full_scan_s"] / rows[-1]["catalogue_minutes"]
    rng = np.random.default_rng(19)
    base = {k: fps_of[k] for k in distractors[:sizes[-1]] + traced}
    idx = MemoryIndex()
    for vid, (fp, fps) in base.items():
        idx.add(vid, catalogue_signatures(fp, fps))
    minutes = rows[-1]["catalogue_minutes"]
    synthetic = 0
    for target_hours in [h for h in (5, 20, 50, 100, 200, 500) if h <= synthetic_hours]:
        while minutes < target_hours * 60:
            fp, fps = fps_of[distractors[rng.integers(len(distractors))]]
            fake = np.roll(fp[:, rng.permutation(fp.shape[1])], int(rng.integers(len(fp))), axis=0)
            idx.add(f"synthetic-{synthetic}", catalogue_signatures(fake, fps))
            synthetic += 1
            minutes += len(fp) / float(fps) / 60
        search, right = [], 0
        for vid, (sus, fps) in suspects.items():
            took, short = _timed_search(idx, sus, fps)
            search.append(took)
            right += bool(short) and short[0].video_id == vid
        rows.append({"videos": len(base) + synthetic, "catalogue_minutes": round(minutes, 1), "index_rows": len(idx),
                     "index_search_s": round(float(np.median(search)), 4),
                     "full_scan_s": round(scan_per_minute * minutes, 1), "full_scan_extrapolated": True,
                     "right_video_first": f"{right}/{len(suspects)}", "synthetic": True})
        log(f"identification at {rows[-1]['videos']} videos: {rows[-1]}")
    return {"attack": LEAK_ATTACK, "rows": rows, "scan_seconds_per_catalogue_minute": round(scan_per_minute, 4)}
