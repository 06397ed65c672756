"""Gray frames out of ffmpeg, resampled to the source's frame rate.

Every analysis step works on luma only (the mark lives in luma) at a small size
(the pattern is smooth). Resampling the suspect to the *source's* constant frame
rate with the same `fps` filter the pipeline used makes "suspect frame k" and
"source frame k + offset" show the same instant, whatever rate the leaker chose.
"""
from __future__ import annotations

import subprocess
from fractions import Fraction
from typing import Iterator

import numpy as np

from svcommon import ffmpeg as ff

from ..media.ffmpeg_cmd import FIT_TOLERANCE, fit_filter, picture_format, to_sdr

# One analysis decode: rlimits and wall time (the suspect passed the shared probe's
# duration/fps/gap limits, so its frame count is bounded too).
ANALYSIS_BOUNDS = ff.Bounds(cpu_seconds=4 * 3600, memory_bytes=3 * 1024 ** 3, file_bytes=64 * 1024 ** 2,
                            wall_seconds=4 * 3600)


def analysis_filter(width: int, height: int, fps: Fraction, color: str = "",
                    viewed: tuple[int, int] | None = None) -> str:
    """The one way the detector looks at a video: constant rate, area-scaled, luma only
    (the analysis proxy is built through it too, so proxy and original read alike). An
    original (``viewed``: the watermark's size, what viewers got) is read as the pipeline
    made it: a picture whose shape changes mid-stream fitted with bars, transparency shown
    as black (ffmpeg_cmd.fit_filter),
    and an HDR or wide-gamut one scaled to the watermark's size and converted there
    (ffmpeg_cmd.to_sdr). Converting after the shrink instead left a PQ source's residual
    at ~17 grey levels (a tone curve and an average do not commute), drowning the mark.
    A suspect is scaled as it is, whatever its shape (a leak may be cropped or stretched).
    An original read at a size of another shape than the viewed one (its fingerprint's 64x36
    grid) is fitted at the viewed size, then scaled as its analysis proxy is (stretched)."""
    if viewed is None:
        picture = f"scale={width}:{height}:flags=area"
    elif to_sdr(color):
        picture = (f"{fit_filter(*viewed, 'bicubic', pix_fmt=picture_format(color))},{to_sdr(color)}"
                   f"scale={width}:{height}:flags=area")
    elif abs(width * viewed[1] / (height * viewed[0]) - 1) < FIT_TOLERANCE:
        picture = fit_filter(width, height, "area", pix_fmt="gray")
    else:
        picture = f"{fit_filter(*viewed, 'area', pix_fmt='gray')},scale={width}:{height}:flags=area"
    return f"fps={fps.numerator}/{fps.denominator},{picture},format=gray"


def gray_cmd(path: str, width: int, height: int, fps: Fraction, start_frame: int = 0,
             max_frames: int | None = None, color: str = "", viewed: tuple[int, int] | None = None,
             video_decoder: str = "") -> list[str]:
    argv = ff.base()
    if start_frame > 0:
        # Input-side seek decodes from the previous key frame and drops up to the
        # instant: frame `start_frame` of the fps-filtered timeline comes out first
        # (checked against the fingerprint by the caller).
        argv += ["-ss", f"{float(start_frame / fps):.6f}"]
    argv += [*ff.KEEP_FILTER_GRAPH, *ff.input_args(path, video_decoder=video_decoder),
             "-map", ff.VIDEO_STREAM, "-an", "-sn", "-dn",
             "-vf", analysis_filter(width, height, fps, color, viewed),
             "-fps_mode", "passthrough"]
    if max_frames is not None:
        argv += ["-frames:v", str(max_frames)]
    return argv + ["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]


class GrayFrames:
    """Iterate uint8 (height, width) frames; always reaps ffmpeg (use as a context)."""

    def __init__(self, path: str, width: int, height: int, fps: Fraction, start_frame: int = 0,
                 max_frames: int | None = None, color: str = "", viewed: tuple[int, int] | None = None,
                 video_decoder: str = ""):
        self.shape = (height, width)
        self.size = width * height
        # Bounded like every ffmpeg child (svcommon.ffmpeg); stderr is small (-loglevel error).
        self.proc = ff.spawn(gray_cmd(path, width, height, fps, start_frame, max_frames, color, viewed,
                                      video_decoder),
                             ANALYSIS_BOUNDS,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = ""

    def __enter__(self) -> "GrayFrames":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        read = self.proc.stdout.read
        while True:
            data = read(self.size)
            if len(data) < self.size:
                return
            yield np.frombuffer(data, dtype=np.uint8).reshape(self.shape)

    def close(self) -> None:
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.poll() is None:
            ff.kill_group(self.proc)
        _, err = self.proc.communicate()
        self.stderr = (err or b"").decode("utf-8", "replace")[-2000:]


def block_means(frame: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Area-average a frame down to (rows, cols) blocks (a remainder of a few edge
    pixels is ignored when the size is not divisible)."""
    h, w = frame.shape
    bh, bw = h // rows, w // cols
    oy, ox = (h - bh * rows) // 2, (w - bw * cols) // 2
    core = frame[oy:oy + bh * rows, ox:ox + bw * cols]
    return core.reshape(rows, bh, cols, bw).mean(axis=(1, 3), dtype=np.float32)
