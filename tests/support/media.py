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


def make_texture_clip(path: Path, seed: int, seconds: float = 30, size: str = "480x270", fps: int = 30) -> Path:
    """Busy texture no other test video looks like, the same for the same seed: rule-110 cells
    (the forensics benchmarks' "texture", bench/forensics/goal.py). Tests that trace a copy
    without naming its video need it: every make_clip video of a shared stack shows the same
    testsrc2 frames, so the fingerprint cannot choose among them and the video read may be
    another one."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"cellauto=s={size}:rate={fps}:rule=110:random_fill_ratio=0.5:random_seed={seed}",
                    "-t", str(seconds), "-vf", "boxblur=2,format=yuv420p", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "18", "-movflags", "+faststart", str(path)], check=True)
    return path
