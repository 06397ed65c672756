"""Generated test media (never committed): small clips made with ffmpeg's lavfi sources."""
from __future__ import annotations

import subprocess
from pathlib import Path

# A source whose ladder is the single 360p rung: half the encoding of the 854x480 default
# (480p + 360p), for tests that never switch rungs.
ONE_RUNG = "640x360"


def make_clip(path: Path, seconds: float = 6, size: str = "854x480", fps: int = 30, audio: bool = True,
              source: str = "testsrc2") -> Path:
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"{source}=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    argv += ["-movflags", "+faststart", str(path)]
    subprocess.run(argv, check=True)
    return path
