"""Smoke of the scale benchmark (bench/forensics/scale.py, stage "scaling"), small enough for
CI: a few distractor clips of the benchmark's content, one traced clip attacked with the
benchmark's goal attack, and synthetic videos up to 5 hours of catalogue. The right video
must come first at every size, and the index search must stay far below the exhaustive scan's
extrapolated cost once the catalogue is hours long."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "forensics"
sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.forensics_accuracy


def test_scale_bench_smoke(tmp_path):
    from scale_content import distractors, render, traced
    from scale_identify import identification_scaling
    clips = [render(c, tmp_path / f"{c.name}.mp4") for c in distractors(10, seconds=8)]
    target = render(traced(["texture"], seconds=40)[0], tmp_path / "t-texture.mp4")
    out = identification_scaling(clips + [target], {"texture": target}, tmp_path, synthetic_hours=5,
                                 traced_seconds=40)
    rows = out["rows"]
    assert [r["videos"] for r in rows if not r["synthetic"]] == [11]
    assert all(r["right_video_first"] == "1/1" for r in rows), rows
    big = rows[-1]
    assert big["synthetic"] and big["catalogue_minutes"] >= 300
    assert big["index_search_s"] < 2.0 and big["index_search_s"] < big["full_scan_s"] / 5, big
