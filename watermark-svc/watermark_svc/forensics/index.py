"""Candidate search over the catalogue: an inverted index of signature keys (signatures.py)
and the vote that turns a suspect's hits into a short list of videos.

The index maps a key to the (video, window) pairs that have it. A suspect's keys are looked
up (cost: the hits, not the catalogue's minutes) and every hit votes for (video, offset):
the suspect window w matching window v of a video says "the copy starts v - w steps into
it". A copy of that video makes many of its windows agree on one offset; chance hits of
other videos scatter over offsets. Each video's score is its best offset's number of
agreeing suspect windows; the top few go on to the exact fingerprint correlation
(trace.py). Near-duplicates (shared footage, the same file twice) get alike scores and all
come back, so the watermark can decide between them.

MemoryIndex holds the table in numpy arrays (tests, benchmarks, LocalCatalogue);
indexdb.py keeps the same rows in MariaDB for the service.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .signatures import STEP_S, Signatures

MIN_VOTES = 3                   # fewer agreeing windows than this is chance
SHORTLIST = 6                   # videos given the exact correlation...
NEAR_FRACTION = 0.5             # ...plus any scoring this close to the best (near-duplicates)
MAX_SHORTLIST = 16


@dataclass(frozen=True)
class IndexHits:
    keys: np.ndarray            # (n,) int64
    videos: np.ndarray          # (n,) str (object): the video of each hit
    windows: np.ndarray         # (n,) int: the video's window number


@dataclass(frozen=True)
class Candidate:
    video_id: str
    votes: int                  # suspect windows agreeing on the best offset
    offset_seconds: float       # the index's estimate of where the copy starts in the video


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenated np.arange(lo[i], hi[i]) for all i, without a Python loop."""
    counts = hi - lo
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return starts + np.arange(int(counts.sum()))


_SPAN = 1 << 21                 # packing (video, offset, window) into one int64


def vote(query: Signatures, hits: IndexHits) -> list[Candidate]:
    """Candidates best first (every video with a hit; shortlist() picks)."""
    if not len(hits.keys) or not len(query.keys):
        return []
    order = np.argsort(query.keys, kind="stable")
    qk, qw = query.keys[order], query.windows[order]
    lo, hi = np.searchsorted(qk, hits.keys, "left"), np.searchsorted(qk, hits.keys, "right")
    if not (hi - lo).sum():
        return []
    hit_of_pair = np.repeat(np.arange(len(hits.keys)), hi - lo)        # every (hit, query entry) pair
    query_of_pair = _ranges(lo, hi)
    names, video_code = np.unique(hits.videos.astype(str), return_inverse=True)
    sus2 = np.rint(2 * qw[query_of_pair]).astype(np.int64)               # half-step units
    delta2 = 2 * hits.windows[hit_of_pair].astype(np.int64) - sus2 + _SPAN // 2
    pair = video_code[hit_of_pair].astype(np.int64) * _SPAN + delta2     # (video, offset)
    # One vote per suspect window per (video, offset), however many of its keys matched.
    pair = np.unique(pair * _SPAN + sus2) // _SPAN
    codes, n = np.unique(pair, return_counts=True)
    # A copy starting between two catalogue windows splits its votes over neighbouring
    # half-step offsets: an offset's score sums the three around it.
    total = n.copy()
    for step in (-1, 1):
        at = np.searchsorted(codes, codes + step)
        found = (at < len(codes)) & (codes[np.minimum(at, len(codes) - 1)] == codes + step)
        total[found] += n[at[found]]
    video = codes // _SPAN
    best = np.lexsort((-total, video))                                   # per video, best offset first
    first = best[np.r_[True, video[best][1:] != video[best][:-1]]]
    out = [Candidate(str(names[video[i]]), int(total[i]), round(int(codes[i] % _SPAN - _SPAN // 2) * STEP_S / 2, 2))
           for i in first]
    return sorted(out, key=lambda c: (-c.votes, c.video_id))


def shortlist(candidates: list[Candidate]) -> list[Candidate]:
    """The videos worth the exact correlation: the SHORTLIST best with MIN_VOTES, and every
    further one within NEAR_FRACTION of the best (near-duplicates), up to MAX_SHORTLIST."""
    real = [c for c in candidates if c.votes >= MIN_VOTES]
    if not real:
        return []
    close = [c for c in real[SHORTLIST:] if c.votes >= NEAR_FRACTION * real[0].votes]
    return (real[:SHORTLIST] + close)[:MAX_SHORTLIST]


# The index alone can name the video: when its best candidates out-vote every other video by
# DECISIVE_RATIO (near-duplicates vote alike and count as one group), trace.py reads them even
# if the exact fingerprint correlation places the copy nowhere clearly. That happens on looping
# content: a slowly turning night sky repeats every few seconds, every period correlates alike
# and no fingerprint peak stands out, while the index's windows still agree on the video
# (measured: 688 votes against 64 for the next video). A wrong read costs time, never an
# accusation (its watermark reads as noise).
DECISIVE_RATIO = 5.0
DECISIVE_MIN_VOTES = 30


def decisive(candidates: list[Candidate]) -> list[str]:
    """The videos the vote alone names (see DECISIVE_RATIO); none when it is not clear."""
    if not candidates or candidates[0].votes < DECISIVE_MIN_VOTES:
        return []
    group = [c for c in candidates if c.votes >= NEAR_FRACTION * candidates[0].votes]
    rest = candidates[len(group)].votes if len(candidates) > len(group) else 0
    if group[-1].votes < DECISIVE_RATIO * rest:
        return []
    return [c.video_id for c in group]


@dataclass
class MemoryIndex:
    """The inverted index in memory: rows sorted by key, looked up with searchsorted."""
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    videos: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    windows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    _pending: list = field(default_factory=list)

    def add(self, video_id: str, sig: Signatures) -> None:
        self._pending.append((sig.keys, np.full(len(sig.keys), video_id, object), sig.windows))

    def _settle(self) -> None:
        if not self._pending:
            return
        parts = [(self.keys, self.videos, self.windows), *self._pending]
        keys = np.concatenate([p[0] for p in parts])
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.videos = np.concatenate([p[1] for p in parts])[order]
        self.windows = np.concatenate([p[2] for p in parts]).astype(np.int32)[order]
        self._pending = []

    def __len__(self) -> int:
        self._settle()
        return len(self.keys)

    def lookup(self, keys: np.ndarray) -> IndexHits:
        self._settle()
        wanted = np.unique(keys)
        lo, hi = np.searchsorted(self.keys, wanted, "left"), np.searchsorted(self.keys, wanted, "right")
        rows = _ranges(lo, hi)
        return IndexHits(self.keys[rows], self.videos[rows], self.windows[rows])
