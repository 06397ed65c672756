"""Limits on the media we accept, as settings (every service that probes or processes
media declares MEDIA_SETTINGS), and the refusal the probe raises when one is exceeded."""
from __future__ import annotations

from dataclasses import dataclass

from . import ffmpeg as ff
from .config import Setting

MiB = 1024 * 1024


class MediaRejected(Exception):
    """``reason`` is shown to the uploader; ``limit`` names the setting that refused it."""

    def __init__(self, reason: str, limit: str | None = None):
        super().__init__(reason)
        self.reason, self.limit = reason, limit


MEDIA_SETTINGS = [
    Setting("MEDIA_MAX_WIDTH", 7680, int, "widest accepted picture (pixels, as stored)"),
    Setting("MEDIA_MAX_HEIGHT", 7680, int, "tallest accepted picture (pixels, as stored)"),
    Setting("MEDIA_MAX_PIXELS", 7680 * 4320, int, "largest accepted picture area (width x height)"),
    Setting("MEDIA_MAX_DURATION_SECONDS", 4 * 3600, float, "longest accepted video (published duration)"),
    Setting("MEDIA_MAX_FPS", 120, float, "highest accepted frame rate"),
    Setting("MEDIA_MAX_STREAMS", 64, int, "most streams (video+audio+subtitles+data) in one file (a film's "
            "rip carries a subtitle track per language, a broadcast capture every stream of its service)"),
    Setting("MEDIA_MAX_GAP_SECONDS", 300.0, float, "longest stretch without a video frame (a screen "
            "recording holds none while nothing moves)"),
    Setting("MEDIA_MIN_PIXELS", 128 * 72, int, "smallest picture area published (width x height): below it "
            "the forensic watermark cannot trace a re-encoded leak"),
    Setting("PROBE_TIMEOUT_SECONDS", 120, int, "wall time of each probe step (ffprobe/ffmpeg child)"),
    Setting("MEDIA_CHILD_MEMORY_MB", 6144, int, "address-space limit of every ffmpeg/ffprobe child "
            "(virtual memory: x264 threads reserve stacks; raise on hosts with many cores)"),
    Setting("MEDIA_CHILD_FILE_MB", 16384, int, "largest file any ffmpeg child may write"),
    Setting("MEDIA_CPU_PER_MEDIA_SECOND", 40.0, float,
            "CPU (and wall) seconds a processing child (and the job) may spend per second of "
            "video, plus PROBE_TIMEOUT_SECONDS"),
]


@dataclass(frozen=True)
class MediaLimits:
    max_width: int = 7680
    max_height: int = 7680
    max_pixels: int = 7680 * 4320
    max_duration_s: float = 4 * 3600
    max_fps: float = 120
    max_streams: int = 64
    max_gap_s: float = 300.0
    probe_seconds: int = 120
    memory_bytes: int = 6144 * MiB
    file_bytes: int = 16384 * MiB
    cpu_per_media_second: float = 40.0
    min_pixels: int = 128 * 72

    @classmethod
    def from_config(cls, cfg) -> "MediaLimits":
        d = cls()
        get = lambda k, dv: cfg.get(k, dv) if hasattr(cfg, "get") else dv  # noqa: E731
        return cls(int(get("MEDIA_MAX_WIDTH", d.max_width)), int(get("MEDIA_MAX_HEIGHT", d.max_height)),
                   int(get("MEDIA_MAX_PIXELS", d.max_pixels)),
                   float(get("MEDIA_MAX_DURATION_SECONDS", d.max_duration_s)),
                   float(get("MEDIA_MAX_FPS", d.max_fps)), int(get("MEDIA_MAX_STREAMS", d.max_streams)),
                   float(get("MEDIA_MAX_GAP_SECONDS", d.max_gap_s)),
                   int(get("PROBE_TIMEOUT_SECONDS", d.probe_seconds)),
                   int(get("MEDIA_CHILD_MEMORY_MB", d.memory_bytes // MiB)) * MiB,
                   int(get("MEDIA_CHILD_FILE_MB", d.file_bytes // MiB)) * MiB,
                   float(get("MEDIA_CPU_PER_MEDIA_SECOND", d.cpu_per_media_second)),
                   min_pixels=int(get("MEDIA_MIN_PIXELS", d.min_pixels)))

    def probe_bounds(self) -> ff.Bounds:
        # A probe writes nothing but pipes: 64 MiB of file is plenty.
        return ff.Bounds(cpu_seconds=self.probe_seconds, memory_bytes=self.memory_bytes,
                         file_bytes=64 * MiB, wall_seconds=self.probe_seconds)

    def work_bounds(self, duration_s: float) -> ff.Bounds:
        """Bounds of one processing child for a video of this (probed) duration."""
        budget = int(self.probe_seconds + self.cpu_per_media_second * max(duration_s, 1.0))
        return ff.Bounds(cpu_seconds=budget, memory_bytes=self.memory_bytes,
                         file_bytes=self.file_bytes, wall_seconds=budget)
