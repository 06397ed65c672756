"""The codeword constructions against colluders, on soft bits as a clean read gives them
(no media: fast). svcommon.codeword's two schemes, scoring's exact null for each, and
verdict.accuse's residual stage. Seeded; each test counts outcomes over trials."""
from __future__ import annotations

import itertools
import math
import uuid

import numpy as np
import pytest

from svcommon import codeword as cw
from watermark_svc.forensics.scoring import null_tail, score_sessions, votes
from watermark_svc.forensics.verdict import accuse

SECRET = b"collusion-codes-secret-0123456789ab"
VIDEO = "c0de" * 8
TARDOS = cw.Code(cw.TARDOS, VIDEO)
MAX_FAP = 1e-6


def ids(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [uuid.UUID(int=int(rng.integers(0, 2 ** 62))).hex for _ in range(n)]


def bits(sid: str, idx: list[int], code: cw.Code) -> np.ndarray:
    return np.array([cw.codeword_bit(SECRET, sid, i, code) for i in idx])


def copy_z(colluders: list[str], idx: list[int], code: cw.Code, attack: str, rng) -> np.ndarray:
    """Soft bits of the colluders' copy (+8 for A, -8 for B, unit noise; 0 where averaged
    frames cancel): the marking assumption holds, the copy shows only symbols they hold."""
    x = np.array([bits(s, idx, code) for s in colluders])
    ones = x.sum(0)
    c = len(colluders)
    unanimous = (ones == 0) | (ones == c)
    if attack == "alternate":
        y = x[np.arange(len(idx)) % c, np.arange(len(idx))].astype(float)
    elif attack == "minority":          # the symbol fewer colluders hold, where they differ
        y = np.where(unanimous, x[0], (2 * ones < c).astype(int)).astype(float)
    elif attack == "average":           # the watermark cancels where they differ
        y = np.where(unanimous, x[0], 0.5)
    else:
        raise ValueError(attack)
    return (1 - 2 * y) * 8.0 + rng.normal(0, 1, len(idx))


def test_uniform_codeword_is_unchanged():
    """Sessions served before the Tardos code keep their codewords: the uniform bit is the
    first HMAC byte's low bit, as it always was (docs/api.md)."""
    import hashlib
    import hmac
    sid = "0123456789abcdef" * 2
    for i in (0, 1, 599, 10_000):
        expected = hmac.new(SECRET, f"codeword:{sid}:{i}".encode(), hashlib.sha256).digest()[0] & 1
        assert cw.codeword_bit(SECRET, sid, i) == expected == cw.codeword_bit(SECRET, sid, i, cw.Code(cw.UNIFORM, VIDEO))


def test_tardos_bits_follow_their_secret_bias():
    """Every position's bias is one of the two Nuida points, both occur, and 4000 sessions'
    bits at a position follow it (binomial, 5 sigma)."""
    thresholds = [cw.bias_threshold(SECRET, TARDOS, i) for i in range(40)]
    assert set(thresholds) == {cw.BIAS_LOW, 2 ** 32 - cw.BIAS_LOW}
    sessions = ids(1, 4000)
    for i in range(6):
        p = thresholds[i] / 2 ** 32
        ones = sum(cw.codeword_bit(SECRET, s, i, TARDOS) for s in sessions)
        assert abs(ones - 4000 * p) <= 5 * math.sqrt(4000 * p * (1 - p))
    # The bias is the video's own: another video's positions are biased independently.
    other = [cw.bias_threshold(SECRET, cw.Code(cw.TARDOS, "f" * 32), i) for i in range(40)]
    assert other != thresholds
    with pytest.raises(ValueError):
        cw.Code(cw.TARDOS)                      # a Tardos code is per video
    assert cw.scheme_for(cw.TARDOS_MIN_SEGMENTS - 1) == cw.UNIFORM
    assert cw.scheme_for(cw.TARDOS_MIN_SEGMENTS) == cw.TARDOS


def test_tardos_null_tail_is_exact():
    """The null's tail equals brute-force enumeration of every innocent codeword over 10
    segments with mixed weights and biases."""
    rng = np.random.default_rng(4)
    idx = list(range(100, 110))
    v = votes(rng.normal(0, 5, 10), idx, SECRET, TARDOS)
    tail, low = null_tail(v.gain, v.loss, v.agree_p)
    dist: dict[int, float] = {}
    for agree in itertools.product((True, False), repeat=10):
        s = sum(int(g) if a else -int(lo) for a, g, lo in zip(agree, v.gain, v.loss))
        pr = math.prod(p if a else 1 - p for a, p in zip(agree, v.agree_p))
        dist[s] = dist.get(s, 0.0) + pr
    for t in sorted(dist):
        assert tail[t + low] == pytest.approx(sum(pr for s, pr in dist.items() if s >= t), rel=1e-9)


@pytest.mark.parametrize("code", [cw.UNIFORM_CODE, TARDOS], ids=["uniform", "tardos"])
def test_innocents_stay_below_the_bound(code):
    """Noise read as a copy, 200 sessions, 200 trials: the share of trials where any innocent
    reaches false-accusation probability <= 0.05 is <= 0.05 (10 of 200, and some slack)."""
    rng = np.random.default_rng(5)
    sessions = ids(2, 200)
    hits = 0
    for trial in range(200):
        idx = list(range(trial * 30, trial * 30 + 30))
        best = score_sessions(rng.normal(0, 4, 30), idx, sessions, SECRET, code=code)[0]
        hits += best.false_accusation <= 0.05
    assert hits <= 14


def test_three_colluders_voting_by_minority_beat_the_uniform_code_not_tardos():
    """Three colluders show, where their bits differ, the symbol only one of them holds. Under
    the uniform code every colluder is then at chance (its score's mean is 0): over 600 segments
    no one is named. Under the Tardos code at least one is, in 8 of 10 trials; no innocent
    ever is."""
    rng = np.random.default_rng(6)
    sessions = ids(3, 300)
    named = {"uniform": 0, "tardos": 0}
    for trial in range(10):
        colluders = sessions[3 * trial:3 * trial + 3]
        idx = list(range(trial * 600, trial * 600 + 600))
        for name, code in (("uniform", cw.UNIFORM_CODE), ("tardos", TARDOS)):
            z = copy_z(colluders, idx, code, "minority", rng)
            _, found = accuse(z, idx, sessions, SECRET, len(sessions), MAX_FAP, code)
            accused = {s.session_id for s in found}
            assert accused <= set(colluders), (name, trial)
            named[name] += bool(accused)
    assert named["uniform"] == 0 and named["tardos"] >= 8, named


@pytest.mark.parametrize("code, n", [(cw.UNIFORM_CODE, 140), (TARDOS, 200)], ids=["uniform", "tardos"])
def test_the_residual_stage_names_the_second_colluder(code, n):
    """Two colluders alternate segments, each agreeing with the copy on ~3/4 of them. Where the
    copy differs from the first accused colluder's bits it shows the other's, so scored on those
    segments alone the second stands out. Over 12 trials both are named at least 6 times, and in
    at least 4 more trials than the first stage alone would name both even at the full
    threshold (measured: 8 against 1-4 over three seeds); never an innocent."""
    rng = np.random.default_rng(8)
    sessions = ids(4, 200)
    first_stage_both = both = 0
    for trial in range(12):
        pair = sessions[2 * trial:2 * trial + 2]
        idx = list(range(trial * n, trial * n + n))
        z = copy_z(pair, idx, code, "alternate", rng)
        scores, found = accuse(z, idx, sessions, SECRET, len(sessions), MAX_FAP, code)
        accused = {s.session_id for s in found}
        assert accused <= set(pair)
        assert [s.stage for s in found] in ([], [1], [1, 1], [1, 2])
        first_stage_both += sum(s.false_accusation <= MAX_FAP for s in scores[:2]) == 2
        both += accused == set(pair)
    assert both >= 6 and both >= first_stage_both + 4, (both, first_stage_both)


def test_the_detector_and_streaming_read_the_scheme_from_the_metadata():
    """What processing writes is what both sides use; metadata from before the choice is uniform."""
    from watermark_svc.forensics.dbcatalogue import geometry_from_metadata
    meta = {"watermark": {"pattern_width": 64, "pattern_height": 36, "frames_per_segment": 60}, "fps": "30/1",
            "codeword": {"scheme": cw.TARDOS}}
    assert geometry_from_metadata(meta).code(VIDEO) == TARDOS == cw.Code.of_metadata(VIDEO, meta)
    del meta["codeword"]
    assert geometry_from_metadata(meta).code(VIDEO) == cw.Code(cw.UNIFORM, VIDEO) == cw.Code.of_metadata(VIDEO, meta)
