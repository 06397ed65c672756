"""The pristine source as the detector reads it: a small analysis proxy, built once.

Detection compares a suspect with our source frame by frame. Originals are mezzanine
files, tens of Mbit/s and more (a grainy dark scene at high quality reaches 150
Mbit/s), and decoding two minutes of one costs more than the whole trace may. The
detector only ever looks at luma at no more than ANALYSIS_MAX_HEIGHT lines, so the
original is decoded once through the same fps/area-scale/gray chain GrayFrames uses,
and the result is kept as a high-quality H.264 file with a key frame every second
(fast seeks). Later traces decode that instead of the original, and so does the
fingerprint.

Why lossy is fine: the original carries no watermark, so the proxy's coding error is
independent of every pattern; it only adds a fraction of a grey level of noise to the
residual, next to the several levels of the leak's own re-encode.
"""
from __future__ import annotations

from pathlib import Path

from svcommon import ffmpeg as ff

from ..media.errors import ProcessingError
from .detector import WatermarkGeometry, analysis_size
from .frames import analysis_filter

PROXY_CRF = 20
PROXY_TIMEOUT_S = 3600


def proxy_size(g: WatermarkGeometry) -> tuple[int, int]:
    """The largest analysis size any suspect can ask for (suspects only shrink it)."""
    return analysis_size(g, g.pattern_height)


def proxy_cmd(source: str, g: WatermarkGeometry, dest: str) -> list[str]:
    w, h = proxy_size(g)
    key_every = max(1, round(float(g.fps)))
    # format=gray first, exactly as GrayFrames converts; x264 then stores it as
    # full-range 4:2:0 with flat chroma, which decodes back to the same luma.
    return [*ff.base(), "-y", *ff.KEEP_FILTER_GRAPH,
            *ff.input_args(source, video_decoder=g.source_decoder),        # read whole, as it was processed
            "-map", ff.VIDEO_STREAM, "-an", "-sn", "-dn",
            "-vf", f"{analysis_filter(w, h, g.fps, g.source_color, (g.pattern_width, g.pattern_height))},format=yuvj420p",
            "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", str(PROXY_CRF), "-g", str(key_every), "-map_metadata", "-1",
            "-f", "mp4", dest]


def build_proxy(source: str, g: WatermarkGeometry, dest: Path) -> Path:
    """Write the analysis proxy of `source` to dest (removed again if anything fails)."""
    dest = Path(dest)
    try:
        proc = ff.run(proxy_cmd(source, g, str(dest)),
                      ff.Bounds(cpu_seconds=PROXY_TIMEOUT_S, memory_bytes=3 * 1024 ** 3,
                                file_bytes=16 * 1024 ** 3, wall_seconds=PROXY_TIMEOUT_S))
    except ff.Timeout as exc:
        dest.unlink(missing_ok=True)
        raise ProcessingError("reference", "building the analysis proxy timed out") from exc
    if proc.returncode != 0:
        dest.unlink(missing_ok=True)
        raise ProcessingError("reference", "building the analysis proxy failed",
                              proc.stderr.decode("utf-8", "replace")[-2000:])
    return dest
