"""choose_ladder(): standard rungs, never above the source, aspect kept, even sizes."""
from __future__ import annotations

from fractions import Fraction

import pytest

from watermark_svc.media.ladder import choose_ladder, h264_level
from watermark_svc.media.probe import ProbeResult


def _probe(w: int, h: int, fps: Fraction = Fraction(30), aspect: Fraction | None = None):
    return ProbeResult(width=w, height=h, display_aspect=aspect or Fraction(w, h), fps=fps,
                       duration_s=10.0, video_codec="h264", has_audio=False,
                       audio_codec=None, bitrate=None)


@pytest.mark.parametrize("w,h,expected", [
    (3840, 2160, [(1920, 1080), (1280, 720), (854, 480), (640, 360)]),
    (1920, 1080, [(1920, 1080), (1280, 720), (854, 480), (640, 360)]),
    (1280, 720, [(1280, 720), (854, 480), (640, 360)]),
    (854, 480, [(854, 480), (640, 360)]),
    (640, 480, [(640, 480), (480, 360)]),            # 4:3 keeps 4:3
    (1920, 800, [(1920, 800), (1280, 534), (854, 356), (640, 266)]),  # 2.40:1 film
    (1080, 1920, [(1080, 1920), (720, 1280), (480, 854), (360, 640)]),  # portrait phone
    (640, 360, [(640, 360)]),
    (320, 240, [(320, 240)]),                        # below 360p: source size
    (426, 240, [(426, 240)]),
    (175, 143, [(176, 144)]),                        # odd sizes become even
])
def test_ladder_sizes(w, h, expected):
    rungs = choose_ladder(_probe(w, h))
    assert [(r.width, r.height) for r in rungs] == expected
    for r in rungs:
        assert r.width % 2 == 0 and r.height % 2 == 0
        assert r.height <= max(h, 2) + 1 and r.width <= max(w, 2) + 1
        assert abs(r.width / r.height - w / h) < 0.02
        assert r.maxrate >= r.video_kbps and r.bufsize >= r.maxrate


@pytest.mark.parametrize("h,min_rungs", [(2160, 4), (1080, 4), (720, 3), (480, 2), (360, 1)])
def test_at_least_two_rungs_from_480p(h, min_rungs):
    assert len(choose_ladder(_probe(h * 16 // 9, h))) >= min_rungs


def test_anamorphic_source_uses_display_aspect():
    # 720x576 PAL DVD with 16:9 display aspect: rungs must be 16:9, not 5:4.
    rungs = choose_ladder(_probe(720, 576, Fraction(25), aspect=Fraction(16, 9)))
    assert [(r.width, r.height) for r in rungs] == [(854, 480), (640, 360)]


def test_bitrates_decrease_down_the_ladder_and_rise_with_fps():
    r30 = choose_ladder(_probe(1920, 1080))
    assert [r.video_kbps for r in r30] == sorted((r.video_kbps for r in r30), reverse=True)
    r60 = choose_ladder(_probe(1920, 1080, Fraction(60)))
    assert all(b.video_kbps > a.video_kbps for a, b in zip(r30, r60))


@pytest.mark.parametrize("w,h,fps,kbps,level", [
    (1920, 1080, 30, 5350, "4.0"), (1920, 1080, 60, 8000, "4.2"),
    (1280, 720, 30, 3000, "3.1"), (1280, 720, 60, 4500, "3.2"),
    (854, 480, 30, 1500, "3.1"), (854, 480, 25, 1500, "3.0"), (640, 360, 30, 856, "3.0"),
])
def test_h264_level(w, h, fps, kbps, level):
    assert h264_level(w, h, Fraction(fps), kbps) == level
