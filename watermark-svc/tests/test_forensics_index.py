"""The catalogue index (forensics/signatures.py, index.py, candidates.py), offline: an
attacked copy finds its video among many distractors of other content, near-duplicates all
come back, and a trace through the index reads only the short list.

Distractors are small lavfi clips of different generators and seeds, every one deterministic; the target is longer
and attacked as a leaker would (5 % crop, frame-rate change, downscale, x264 CRF 30, a
window that starts mid-video)."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from watermark_svc.forensics import candidates as cand
from watermark_svc.forensics.detector import geometry_for_source
from watermark_svc.forensics.index import Candidate, MemoryIndex, decisive, shortlist, vote
from watermark_svc.forensics.localcat import LocalCatalogue
from watermark_svc.forensics.signatures import catalogue_signatures, suspect_signatures
from watermark_svc.forensics.timing import fingerprint, suspect_fingerprints

pytestmark = pytest.mark.forensics_accuracy

GENERATORS = [
    "cellauto=s=160x90:rule={rule}:random_seed={seed}:random_fill_ratio=0.4",
    "life=s=160x90:seed={seed}:ratio=0.3:mold=10",
    "sierpinski=s=160x90:seed={seed}:jump={jump}",
    # Not ffmpeg 5.1's gradients with a seed alone: it still picks its colours at random, so its
    # frames differed from run to run and so did a distractor's chance votes (a run once saw 6
    # against the target's 20). Clips made with it elsewhere give a seed and every colour.
    "life=s=160x90:seed={seed}:ratio=0.5:mold=30:life_color=#C0FFC0:death_color=#402040",
    "mandelbrot=s=160x90:start_x={x}:start_y=0.1:end_scale=0.05:end_pts=30",
]
TARGET = "cellauto=s=160x90:rule=110:random_seed=7:random_fill_ratio=0.5"
LEAK_ATTACK = ("crop=iw*0.95:ih*0.95,fps=25,scale=-2:144", 30)


def _render(dest, lavfi: str, seconds: float, rate: int = 30):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"{lavfi}:rate={rate}",
                    "-t", str(seconds), "-vf", "format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "18", str(dest)], check=True)
    return dest


def _attack(src, dest, vf: str, crf: int, ss: float, t: float):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(ss), "-i", str(src), "-t", str(t),
                    "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), str(dest)], check=True)
    return dest


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("forensics-index")
    videos = {}
    for n in range(24):
        lavfi = GENERATORS[n % len(GENERATORS)].format(rule=[30, 90, 105, 150, 182][n % 5], seed=1000 + n,
                                                       jump=1 + n % 5, x=-1.2 + 0.05 * n)
        videos[f"d{n:02d}"] = str(_render(d / f"d{n:02d}.mp4", lavfi, 10, rate=25 if n % 3 == 0 else 30))
    videos["target"] = str(_render(d / "target.mp4", TARGET, 40))
    leak = _attack(videos["target"], d / "leak.mp4", *LEAK_ATTACK, ss=9.3, t=24)
    return {"dir": d, "videos": videos, "leak": str(leak)}


def _index(videos: dict[str, str]) -> MemoryIndex:
    idx = MemoryIndex()
    for vid, path in videos.items():
        fps = geometry_for_source(path).fps
        idx.add(vid, catalogue_signatures(fingerprint(path, fps), fps))
    return idx


def _search(idx: MemoryIndex, leak: str, fps):
    q = suspect_signatures(suspect_fingerprints(leak, fps), fps)
    return vote(q, idx.lookup(q.keys))


def test_attacked_copy_finds_its_video_among_distractors(library):
    ranked = _search(_index(library["videos"]), library["leak"], geometry_for_source(library["videos"]["target"]).fps)
    chosen = shortlist(ranked)
    assert chosen and chosen[0].video_id == "target", ranked[:5]
    # The copy starts 9.3 s in: the vote's offset says so (to a window step).
    assert abs(chosen[0].offset_seconds - 9.3) <= 0.75
    # Far above any distractor: chance hits scatter over offsets.
    assert chosen[0].votes >= 5 * max([c.votes for c in ranked[1:]] or [1])


def test_near_duplicates_all_come_back(library, tmp_path):
    """The same file uploaded twice and a re-encoded re-upload: all three are candidates, so
    the watermark (trace.py) can decide between them."""
    videos = dict(library["videos"])
    videos["target-copy"] = videos["target"]
    reupload = tmp_path / "reupload.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", videos["target"], "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "26", str(reupload)], check=True)
    videos["target-reupload"] = str(reupload)
    chosen = shortlist(_search(_index(videos), library["leak"], geometry_for_source(videos["target"]).fps))
    assert {"target", "target-copy", "target-reupload"} <= {c.video_id for c in chosen}, chosen


def test_unrelated_copy_gets_no_shortlist(library, tmp_path):
    other = _render(tmp_path / "other.mp4", "life=s=160x90:seed=424242:ratio=0.5:mold=5", 20)
    ranked = _search(_index(library["videos"]), str(other), geometry_for_source(str(other)).fps)
    assert not shortlist(ranked) or shortlist(ranked)[0].votes < 6, ranked[:3]


class _CountingCatalogue(LocalCatalogue):
    """Counts the videos whose full fingerprint the trace correlates."""
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.fingerprints_read: set[str] = set()
        self.indexing = False

    def ensure_indexed(self) -> int:
        self.indexing = True
        try:
            return super().ensure_indexed()
        finally:
            self.indexing = False

    def fingerprint(self, video_id: str) -> np.ndarray:
        if not self.indexing:
            self.fingerprints_read.add(video_id)
        return super().fingerprint(video_id)


def test_candidate_search_correlates_only_the_short_list(library):
    catalogue = _CountingCatalogue(library["videos"])
    fps = geometry_for_source(library["videos"]["target"]).fps
    found = cand.search(catalogue, fps, lambda f: suspect_fingerprints(library["leak"], f))
    assert found.video_ids[0] == "target" and len(found.video_ids) <= 6
    assert found.report["used"] and found.report["backfilled_videos"] == len(library["videos"])
    assert not catalogue.fingerprints_read            # the search itself reads no full fingerprint
    again = cand.search(catalogue, fps, lambda f: suspect_fingerprints(library["leak"], f))
    assert again.report["backfilled_videos"] == 0     # indexed once


@pytest.mark.parametrize("votes, named", [
    ([688, 64, 41], ["a"]),                 # the dark leak of the scale bench: one video, clearly
    ([710, 710, 3], ["a", "b"]),            # a file uploaded twice: both, the watermark decides
    ([347, 80], []),                        # ahead, but not 5x the next video
    ([25, 0], []),                          # too few votes to name anything
    ([40, 30, 30, 5], ["a", "b", "c"]),     # a group of alike votes far above the rest
    ([], []),
])
def test_the_vote_alone_names_a_video_only_when_it_is_clear(votes, named):
    ranked = [Candidate(chr(ord("a") + i), v, 0.0) for i, v in enumerate(votes)]
    assert decisive(ranked) == named
