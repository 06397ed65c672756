"""Smoke of the false-accusation controls bench (bench/forensics/controls.py), small enough for
CI: synthetic evidence (noise, as an unmarked copy reads, or one session's leak) scored with the
detector's scoring and decision against a few hundred seeded sessions, many times; the innocents'
p-values must follow the exact null (fraction with p <= x at most x, within sampling error) and
no innocent is ever accused. Plus the tally and the figure the bench writes."""
from __future__ import annotations

import math
import random
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench" / "forensics"
sys.path.insert(0, str(BENCH))

from calibration import Tally, control_trace, svg  # noqa: E402
from svcommon import codeword as cw  # noqa: E402

SECRET = b"controls-smoke-secret-0123456789ab"


def ids(n: int, seed: str) -> list[str]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(n)]


def test_innocent_p_values_follow_the_null_and_nobody_innocent_is_accused():
    rng = np.random.default_rng(5)
    tally = Tally()
    leaks = named = 0
    for trial in range(150):
        n = (15, 30, 60)[trial % 3]
        idx = list(range(trial * 60, trial * 60 + n))
        sessions = ids(200, f"smoke:{trial}")
        leaker = sessions[0]
        if trial % 2:           # a leak of one session: clear bits with noise
            c = np.array([1 - 2 * cw.codeword_bit(SECRET, leaker, i) for i in idx], np.float64)
            z = 2.5 * c + rng.normal(0, 1, n)
        else:                   # no watermark (an unmarked copy, another video): noise
            z = rng.normal(0, 1.5, n)
        r = control_trace(z, idx, sessions, SECRET, set(sessions[1:]), 1e-6, tally)
        assert r["innocents_accused"] == [] and r["innocents"] == 199
        if trial % 2 and n == 60:
            leaks += 1
            named += r["accused"] == [leaker]
    assert tally.traces == 150 and tally.innocents == 150 * 199 and tally.accused_innocents == 0
    for row in tally.p_table()[:3]:                 # 1e-1, 1e-2, 1e-3
        expected = row["x"] * tally.innocents
        assert row["innocent_p_le"] <= expected + 4 * math.sqrt(expected) + 1, row
    # ...and not vacuously: p-values are spread as the null says, not all 1 (0.1: ~0.09 measured).
    assert tally.p_table()[0]["innocent_fraction"] > 0.05
    assert tally.p_table()[0]["trace_fraction"] <= 0.1 + 4 * math.sqrt(0.1 / 150)
    assert named >= leaks - 1 and leaks == 25       # the scoring still names a 60-segment leak


def test_tally_tables_round_trip_and_figure():
    t = Tally()
    t.add(np.array([0.5, 0.05, 0.005, 1e-7]), np.array([0.0, 1.0, 3.0, 6.0]), best_fap=0.02, accused=0)
    t.add(np.array([0.2]), np.array([0.5]), best_fap=1.0, accused=0)
    rows = {r["x"]: r for r in t.p_table()}
    assert rows[0.1]["innocent_p_le"] == 3 and rows[0.1]["innocent_fraction"] == 0.6
    assert rows[1e-6]["innocent_p_le"] == 1 and rows[0.1]["traces_fap_le"] == 1 and rows[0.01]["traces_fap_le"] == 0
    std = {r["y"]: r for r in t.std_table()}
    assert std[3.0]["innocent_std_ge"] == 2 and std[5.5]["innocent_std_ge"] == 1
    back = Tally.from_dict(t.as_dict())
    assert back.as_dict() == t.as_dict() and back.merge(t).innocents == 10
    doc = ET.fromstring(svg(t, "note"))
    ns = "{http://www.w3.org/2000/svg}"
    texts = " ".join(e.text or "" for e in doc.iter(ns + "text"))
    assert "Innocent p-values vs the exact null" in texts and "normal tail" in texts and "note" in texts
    assert len(list(doc.iter(ns + "polyline"))) >= 5
