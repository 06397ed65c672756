"""Seek-preview sprites of a source (the format: svcommon.storyboards): one ffmpeg run
decoding the source once, sprites written as ``{n}.jpg`` in ``out``, checked to be there."""
from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

from svcommon.storyboards import Storyboard, sprite_name

from . import ffmpeg_cmd
from .errors import ProcessingError
from .ladder import display_size
from .probe import ProbeResult
from .procs import ProcessGroup, run_checked


def make_storyboard(source: str, info: ProbeResult, out: Path, group: ProcessGroup) -> tuple[Storyboard, list[Path]]:
    """The storyboard of ``source`` (probed as ``info``) and its sprites, in order."""
    # Tiles in the shape the video is shown in (an anamorphic source's pixels are not square:
    # planned from its pixel size, a 16:9 DVB capture's tiles were 5:4).
    board = Storyboard.plan(info.duration_s, *display_size(info))
    out.mkdir(parents=True, exist_ok=True)
    run_checked(group, "storyboard", ffmpeg_cmd.storyboard_cmd(
        source, board.interval, board.tiles, board.tile_width, board.tile_height, board.columns, board.rows,
        str(out / "%d.jpg"), info.color, info.video_decoder), "storyboard")
    sprites = [out / sprite_name(n) for n in range(1, board.sprites + 1)]
    missing = [p.name for p in sprites if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise ProcessingError("storyboard", f"sprites not produced: {', '.join(missing)}")
    return replace(board, sprite_bytes=tuple(p.stat().st_size for p in sprites), version=uuid.uuid4().hex[:12]), sprites
