"""Decode a source (or one chunk of it) once, watermark every frame, feed the A and B
encoders of the chosen rungs.

    ffmpeg decode --raw yuv420p--> [numpy: luma +/- pattern] --> x264 encoder (rung, A)
                                                           \\--> x264 encoder (rung, B) ...

One writer thread per encoder with a short bounded queue: the decoder, numpy and
all encoders overlap, memory stays at a few frames whatever the video length,
and a slow encoder applies back-pressure instead of buffering the film.
"""
from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import ffmpeg_cmd
from .errors import InvalidMedia, ProcessingError
from .ffmpeg_cmd import EncodeSettings
from .ladder import Rung
from .plan import JobPlan
from .procs import ProcessGroup
from .wmpattern import QuantizedMark, embed_pair, ramp_weights, resize_pattern, segment_pattern

VARIANTS = ("a", "b")
FAN_OUTS = ("per-variant", "per-rung")   # encoder processes: 2, or 2 x rungs
QUEUE_FRAMES = 4          # per encoder; enough to ride out x264 lookahead bursts


class _FrameWriter(threading.Thread):
    """Writes queued frames (tuples of buffers) to one encoder's stdin."""

    def __init__(self, name: str, proc: subprocess.Popen):
        super().__init__(name=f"writer-{name}", daemon=True)
        self.proc = proc
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self.error: BaseException | None = None

    def run(self) -> None:
        pipe = self.proc.stdin
        while True:
            item = self.queue.get()
            if item is None:
                break
            if self.error is not None:
                continue            # keep draining so the producer never blocks
            try:
                for part in item:
                    view = memoryview(part).cast("B")
                    while view:
                        written = pipe.write(view)
                        view = view[written:]
            except (OSError, ValueError) as exc:    # BrokenPipe: the encoder died
                self.error = exc
        try:
            pipe.close()
        except OSError:
            pass


@dataclass
class EncodedLadder:
    files: dict[tuple[str, str], Path]     # (rung name, variant) -> encoded .nut
    frames: int


def _read_exact(pipe, size: int) -> bytearray | None:
    """Next raw frame, None at a clean end of stream."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = pipe.readinto(view[got:])
        if not n:
            if got == 0:
                return None
            raise ProcessingError("encode", f"decoder stopped mid-frame ({got}/{size} bytes)")
        got += n
    return buf


def encode_ab_ladder(source: str, plan: JobPlan, settings: EncodeSettings,
                     secret: bytes, video_id: str, strength: float, work_dir: Path,
                     group: ProcessGroup, on_frame: Callable[[int], None],
                     fan_out: str = "per-variant", *, rungs: tuple[Rung, ...] | None = None,
                     first_segment: int = 0, frame_count: int | None = None) -> EncodedLadder:
    """Encode frames from segment ``first_segment`` on (``frame_count`` of them, or to the
    end) for ``rungs`` (default: all of the plan's). Segment indices are global: frame n
    of this run carries the pattern of segment first_segment + n // frames_per_segment,
    so a chunk is watermarked exactly as the same frames of a whole-video run."""
    if fan_out not in FAN_OUTS:
        raise ValueError(f"fan_out must be one of {FAN_OUTS}")
    chosen = list(rungs or plan.rungs)
    # Decode and watermark at the largest chosen rung's size: the whole ladder at the
    # mezzanine size; the lowest rung alone (the task that makes a video playable) at its
    # own, with the mezzanine-size pattern resampled as the scaler would resample a
    # watermarked mezzanine frame (scaling is linear), at a fraction of the cost.
    top = max(chosen, key=lambda r: r.width * r.height)
    w, h = top.width, top.height
    resize = (w, h) != (plan.mezz_width, plan.mezz_height)
    luma_size = w * h
    frame_size = luma_size * 3 // 2
    files: dict[tuple[str, str], Path] = {}
    writers: dict[str, list[_FrameWriter]] = {v: [] for v in VARIANTS}
    # Rungs grouped per encoder process: all rungs of a variant in one ffmpeg
    # (default, fewer pipe copies) or one process per rung.
    groups = [chosen] if fan_out == "per-variant" else [[r] for r in chosen]
    for rungs in groups:
        for v in VARIANTS:
            outs = [work_dir / f"{r.name}-{v}.nut" for r in rungs]
            files.update({(r.name, v): o for r, o in zip(rungs, outs)})
            label = f"{'+'.join(r.name for r in rungs)}-{v}"
            proc = group.start(f"encode-{label}",
                               ffmpeg_cmd.encode_rungs_cmd(rungs, w, h, settings,
                                                           [str(o) for o in outs]),
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            writers[v].append(_FrameWriter(label, proc))
    all_writers = writers["a"] + writers["b"]
    for t in all_writers:
        t.start()
    decoder = group.start("decode", ffmpeg_cmd.decode_raw_cmd(
                              source, w, h, plan.fps, first_segment * plan.frames_per_segment, frame_count,
                              plan.seek_margin_s, plan.deinterlace, plan.color, settings.threads,
                              plan.video_decoder),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)

    weights = ramp_weights(plan.frames_per_segment)
    n = 0
    segment, pattern, marks = -1, None, {}
    try:
        while True:
            buf = _read_exact(decoder.stdout, frame_size)
            if buf is None:
                break
            if any(t.error for t in all_writers):
                break               # an encoder died; its exit status explains why
            seg, f = divmod(n, plan.frames_per_segment)
            seg += first_segment
            if seg != segment:
                segment, marks = seg, {}
                pattern = segment_pattern(secret, video_id, seg, plan.mezz_width, plan.mezz_height)
                if resize:
                    pattern = resize_pattern(pattern, w, h)
            weight = float(weights[f])
            mark = marks.get(weight)
            if mark is None:
                mark = marks[weight] = QuantizedMark(pattern, strength * weight)
            luma = np.frombuffer(buf, dtype=np.uint8, count=luma_size).reshape(h, w)
            planes = embed_pair(luma, mark)      # (A luma, B luma)
            chroma = memoryview(buf)[luma_size:]
            for v, plane in zip(VARIANTS, planes):
                for t in writers[v]:
                    t.queue.put((plane, chroma))
            n += 1
            on_frame(n)
    finally:
        for t in all_writers:
            t.queue.put(None)
        for t in all_writers:
            t.join()

    for t in all_writers:
        if t.error is not None:     # explain with the encoder's own exit status
            group.wait_ok(t.proc, "encode", timeout=30)
            raise ProcessingError("encode", f"writing to {t.name} failed: {t.error}")
    group.wait_ok(decoder, "encode")
    for t in all_writers:
        group.wait_ok(t.proc, "encode")
    if n == 0:
        raise InvalidMedia("no video frames could be decoded")
    return EncodedLadder(files=files, frames=n)

