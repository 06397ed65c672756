"""The benchmark's videos and attacks: lavfi sources of different content, and the
ffmpeg re-encodes, rescales, crops and windows a leaker might apply."""
from __future__ import annotations

import random
import subprocess
from pathlib import Path

CONTENT = {    # lavfi sources: different motion, texture and brightness
    "pattern": "testsrc2=size=1280x720:rate=30",
    "texture": "cellauto=s=1280x720:rate=30:rule=110:random_seed=7:random_fill_ratio=0.5,scale=1280:720,boxblur=2",
    # A night sky: two dark blue-greys (luma ~11-54) slowly turning, with film grain on luma.
    # Generators get a seed (and gradients every colour): the same clip on every run.
    # nb_colors=2 matters: gradients' default mixes in bright random colours.
    "dark": ("gradients=s=1280x720:rate=30:seed=7:speed=0.02:c0=0x101018:c1=0x283040:nb_colors=2,"
             "format=yuv420p,noise=c0s=6:c0f=t"),
}
ATTACKS = {    # name -> (ffmpeg -vf, crf, window start fraction, window seconds)
    "crf23": ("null", 23, None, None),
    "crf28": ("null", 28, None, None),
    "crf32": ("null", 32, None, None),
    "480p": ("scale=-2:480", 23, None, None),
    "360p": ("scale=-2:360", 23, None, None),
    "fps25": ("fps=25", 23, None, None),
    "crop5": ("crop=iw*0.95:ih*0.95", 23, None, None),
    "win120": ("null", 23, 0.4, 120),
    "win60": ("null", 23, 0.4, 60),
    "win120_480p_crf28": ("scale=-2:480", 28, 0.35, 120),
    "win60_360p_fps25_crf28": ("fps=25,scale=-2:360", 28, 0.5, 60),
    "crop5_480p_crf28": ("crop=iw*0.95:ih*0.95,scale=-2:480", 28, None, None),
}

# The scale benchmark's leaks (scale.py): its traced videos are 150 s, so windows start early;
# apart from run.py's table, whose default runs every attack above.
SCALE_ATTACKS = {
    "goal_crop5_360p_fps25_crf30": ("crop=iw*0.95:ih*0.95,fps=25,scale=-2:360", 30, 0.12, 120),
    "win120_480p_crf32": ("scale=-2:480", 32, 0.15, 120),
}


GOAL_ATTACK = "win120_480p_crf28"


def _spec(name: str):
    return ATTACKS[name] if name in ATTACKS else SCALE_ATTACKS[name]


def sh(argv):
    subprocess.run(argv, check=True, capture_output=True)


def make_video(kind: str, minutes: float, dest: Path) -> Path:
    sh(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", CONTENT[kind], "-t", str(minutes * 60),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", str(dest)])
    return dest


def window_start(name: str, duration: float, trial: int = 0) -> float | None:
    """Where the attack's window starts: at its listed fraction on trial 0, anywhere in the
    video on later trials (seeded, so a rerun attacks the same windows)."""
    _, _, start, window = _spec(name)
    if start is None:
        return None
    if trial and window:
        return random.Random(f"{name}:{trial}").uniform(0, max(0.0, duration - window - 2))
    return duration * start


def attack(src: Path, dest: Path, name: str, duration: float, trial: int = 0) -> Path:
    vf, crf, _, window = _spec(name)
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    at = window_start(name, duration, trial)
    if at is not None:
        argv += ["-ss", f"{at:.2f}"]
    argv += ["-i", str(src)]
    if window:
        argv += ["-t", str(window)]
    sh(argv + ["-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-an", str(dest)])
    return dest
