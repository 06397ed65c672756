"""Seek-preview storyboards: the format the media workers write and streaming-svc serves
(docs/api.md, "Storyboards"). One frame every ``interval`` seconds from the start, scaled
to a tile of at most TILE_BOX × TILE_BOX pixels (display aspect kept), laid out left to
right, top to bottom, ``columns`` × ``rows`` tiles per JPEG sprite (the last sprite padded
black), sprites numbered from 1: ``media/{video}/storyboard/{n}.jpg``, plus a WebVTT
thumbnail track ``media/{video}/storyboard/thumbnails.vtt`` whose cues name
``{n}.jpg#xywh=x,y,w,h`` (relative to the track). The interval grows with the duration so
a video has at most MAX_TILES tiles (MAX_TILES / 25 sprites of 5 × 5), however long."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from .media_keys import media_key

TILE_BOX = 160              # a tile fits in 160 × 160 px: 160 × 90 for 16:9, 90 × 160 portrait
COLUMNS = ROWS = 5          # a sprite holds up to 5 × 5 tiles
MAX_TILES = 100             # so at most 4 sprites, whatever the duration
MIN_INTERVAL_S = 1
END_MARGIN_S = 0.1          # no tile for a last instant shorter than this (there may be no frame)
VTT_NAME = "thumbnails.vtt"


def storyboard_key(video_id: str, name: str) -> str:
    """``name``: ``{n}.jpg`` or VTT_NAME."""
    return media_key(video_id, f"storyboard/{name}")


def storyboard_prefix(video_id: str) -> str:
    return media_key(video_id, "storyboard/")


def sprite_name(number: int) -> str:
    return f"{number}.jpg"


@dataclass(frozen=True)
class Storyboard:
    interval: int           # seconds between tiles; tile i shows the frame at i * interval
    tiles: int
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    sprite_bytes: tuple[int, ...] = ()   # stored size of each sprite (filled once made)
    version: str = ""                    # a fresh id per storyboard made (a cache key part)

    @classmethod
    def plan(cls, duration_s: float, width: int, height: int) -> "Storyboard":
        """The storyboard of a video of ``duration_s`` displayed at ``width`` × ``height``."""
        interval = max(MIN_INTERVAL_S, math.ceil(duration_s / MAX_TILES))
        tiles = max(1, math.ceil((duration_s - END_MARGIN_S) / interval))
        scale = TILE_BOX / max(width, height)
        tw, th = (max(2, int(round(d * scale / 2)) * 2) for d in (width, height))
        columns = min(COLUMNS, tiles)
        return cls(interval, tiles, tw, th, columns, min(ROWS, math.ceil(tiles / columns)))

    @property
    def per_sprite(self) -> int:
        return self.columns * self.rows

    @property
    def sprites(self) -> int:
        return math.ceil(self.tiles / self.per_sprite)

    @property
    def sprite_width(self) -> int:
        return self.columns * self.tile_width

    @property
    def sprite_height(self) -> int:
        return self.rows * self.tile_height

    def tile(self, index: int) -> tuple[int, int, int]:
        """Tile ``index`` (0-based) as (sprite number, x, y)."""
        n, pos = divmod(index, self.per_sprite)
        return n + 1, (pos % self.columns) * self.tile_width, (pos // self.columns) * self.tile_height

    def vtt(self, duration_s: float) -> str:
        """The WebVTT thumbnail track: one cue per tile, together covering [0, duration]."""
        lines = ["WEBVTT", ""]
        for i in range(self.tiles):
            start, end = i * self.interval, duration_s if i == self.tiles - 1 else (i + 1) * self.interval
            n, x, y = self.tile(i)
            lines += [f"{_vtt_time(start)} --> {_vtt_time(end)}",
                      f"{sprite_name(n)}#xywh={x},{y},{self.tile_width},{self.tile_height}", ""]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Storyboard":
        d = json.loads(text)
        known = {f.name for f in fields(cls)}        # a newer writer's extra facts are ignored
        return cls(**{**{k: v for k, v in d.items() if k in known}, "sprite_bytes": tuple(d.get("sprite_bytes") or ())})


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
