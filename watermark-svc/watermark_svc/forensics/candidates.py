"""Which catalogue videos a trace correlates exactly: the index's short list.

The exact identification (timing.match_offsets on every video's per-frame fingerprint) is
what decides the video and the offset, but run on the whole catalogue it costs time in
proportion to the catalogue's minutes. The index (index.py, signatures.py) is looked up with
the suspect's signature keys instead, and only its short list is correlated. A catalogue
that supports no index (a test double) is scanned as before.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import numpy as np

from .index import Candidate, IndexHits, decisive, shortlist, vote
from .signatures import suspect_signatures

# When the index finds nothing, a catalogue this small is still scanned whole: a bounded
# cost (it does not grow with the catalogue), and a small stack keeps the scan's reach for a
# copy whose signatures an attack spoilt entirely.
FULL_SCAN_MAX_VIDEOS = 20

SuspectFingerprints = Callable[[Fraction], dict[float, np.ndarray]]


@dataclass
class CandidateSearch:
    video_ids: list[str]
    report: dict = field(default_factory=dict)      # the result's "index" entry
    decisive: list[str] = field(default_factory=list)   # named by the vote alone (index.decisive)


def _indexed(catalogue) -> bool:
    return callable(getattr(catalogue, "index_lookup", None)) and callable(getattr(catalogue, "ensure_indexed", None))


def search(catalogue, suspect_fps: Fraction, fingerprints_at: SuspectFingerprints) -> CandidateSearch:
    """The videos to correlate, best index candidates first."""
    if not _indexed(catalogue):
        return CandidateSearch(catalogue.candidates(), {"used": False})
    t0 = time.monotonic()
    backfilled = catalogue.ensure_indexed()       # videos processed before the index, once
    t1 = time.monotonic()
    query = suspect_signatures(fingerprints_at(suspect_fps), suspect_fps)
    t2 = time.monotonic()
    hits: IndexHits = catalogue.index_lookup(query.keys)
    ranked: list[Candidate] = vote(query, hits)
    chosen = shortlist(ranked)
    t3 = time.monotonic()
    report = {"used": True, "backfilled_videos": backfilled, "query_keys": int(len(query.keys)),
              "hits": int(len(hits.keys)), "videos_hit": len(ranked),
              "shortlist": [{"video_id": c.video_id, "votes": c.votes, "offset_seconds": c.offset_seconds}
                            for c in chosen],
              "runner_up_votes": ranked[len(chosen)].votes if len(ranked) > len(chosen) else 0,
              "seconds": {"backfill": round(t1 - t0, 3), "suspect_signatures": round(t2 - t1, 3),
                          "lookup_and_vote": round(t3 - t2, 3)}}
    ids = [c.video_id for c in chosen]
    named = [v for v in decisive(ranked) if v in ids]
    report["decisive"] = named
    if not ids:
        everything = catalogue.candidates()
        if len(everything) <= FULL_SCAN_MAX_VIDEOS:
            report["full_scan"] = True
            ids = everything
    return CandidateSearch(ids, report, named)
