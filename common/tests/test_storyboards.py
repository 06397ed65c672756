"""The storyboard format (svcommon.storyboards): bounded tiles for any duration, tile sizes
for landscape and portrait, tile positions and the WebVTT track's cues."""
from __future__ import annotations

import json

import pytest

from svcommon.storyboards import MAX_TILES, Storyboard


@pytest.mark.parametrize("duration, interval, tiles, sprites", [
    (4.0, 1, 4, 1), (4.05, 1, 4, 1), (4.2, 1, 5, 1), (100.0, 1, 100, 4), (101.0, 2, 51, 3),
    (3600.0, 36, 100, 4), (36000.0, 360, 100, 4), (0.5, 1, 1, 1)])
def test_tiles_are_bounded_whatever_the_duration(duration, interval, tiles, sprites):
    b = Storyboard.plan(duration, 1920, 1080)
    assert (b.interval, b.tiles, b.sprites) == (interval, tiles, sprites)
    assert b.tiles <= MAX_TILES and (b.tiles - 1) * b.interval < duration


def test_tile_geometry_landscape_and_portrait():
    wide, tall = Storyboard.plan(60, 640, 360), Storyboard.plan(7, 1080, 1920)
    assert (wide.tile_width, wide.tile_height, wide.columns, wide.rows) == (160, 90, 5, 5)
    assert (tall.tile_width, tall.tile_height, tall.columns, tall.rows) == (90, 160, 5, 2)
    assert (tall.sprite_width, tall.sprite_height) == (450, 320)
    assert wide.tile(0) == (1, 0, 0) and wide.tile(7) == (1, 320, 90) and wide.tile(26) == (2, 160, 0)


def test_vtt_cues_cover_the_duration_and_json_round_trips():
    b = Storyboard.plan(61.5, 640, 360)
    lines = b.vtt(61.5).split("\n")
    assert lines[:4] == ["WEBVTT", "", "00:00:00.000 --> 00:00:01.000", "1.jpg#xywh=0,0,160,90"]
    cues = [line for line in lines if "-->" in line]
    assert len(cues) == b.tiles == 62 and cues[-1] == "00:01:01.000 --> 00:01:01.500"
    assert lines[lines.index(cues[-1]) + 1] == "3.jpg#xywh=160,180,160,90"    # tile 61: sprite 3, 12th tile
    assert Storyboard.from_json(b.to_json()) == b
    assert Storyboard.from_json(json.dumps({**json.loads(b.to_json()), "later": 1})) == b
