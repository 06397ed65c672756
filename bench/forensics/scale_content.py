"""The scale benchmark's catalogue: many short distractor videos of different content and a
few long traced ones, all made with ffmpeg's lavfi generators (no downloads, reproducible).

Distractors are short and small (cheap to process through the real pipeline) but each is
different content: a generator family (cellular automaton, game of life, fractal zoom,
colour gradients, Sierpinski carpet, life under other rules) with its own seed or parameters, at 25 or
30 fps. The traced videos are long enough (2.5 min) for a 120 s leak window and at 480p,
as the goal attack wants.
"""
from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from attacks import CONTENT


@dataclass(frozen=True)
class Clip:
    name: str           # also the video's title suffix
    lavfi: str          # ffmpeg -f lavfi source
    seconds: float
    size: str           # WxH of the upload


def _family(n: int, rng: random.Random) -> str:
    """The n-th distractor's generator, parameters from rng (seeded: same catalogue every run)."""
    seed = rng.randrange(1, 2 ** 31)
    fam = n % 6
    if fam == 0:
        rule = rng.choice([18, 22, 30, 45, 57, 73, 86, 89, 105, 110, 124, 126, 129, 137, 150, 169, 182, 225])
        return f"cellauto=s=320x180:rule={rule}:random_seed={seed}:random_fill_ratio={rng.uniform(0.2, 0.7):.2f}"
    if fam == 1:
        return f"life=s=320x180:seed={seed}:ratio={rng.uniform(0.1, 0.5):.2f}:mold=10:life_color=#{rng.randrange(1 << 24):06x}"
    if fam == 2:
        return (f"mandelbrot=s=320x180:start_x={rng.uniform(-1.5, 0.3):.4f}:start_y={rng.uniform(-0.8, 0.8):.4f}"
                f":start_scale={rng.uniform(0.5, 3):.2f}:end_scale={rng.uniform(0.01, 0.3):.3f}:end_pts={rng.randrange(20, 60)}")
    if fam == 3:
        colours = rng.randrange(2, 6)      # each given: unless they all are, gradients picks them at random
        return (f"gradients=s=320x180:seed={seed}:speed={rng.uniform(0.01, 0.08):.3f}:nb_colors={colours}"
                + "".join(f":c{k}=0x{rng.randrange(1 << 24):06x}" for k in range(colours))
                + f":x0={rng.randrange(320)}:y0={rng.randrange(180)}:x1={rng.randrange(320)}:y1={rng.randrange(180)}")
    if fam == 4:
        return f"sierpinski=s=320x180:seed={seed}:jump={rng.randrange(1, 8)}:type={rng.choice(['carpet', 'triangle'])}"
    rule = rng.choice(["B36/S23", "B3678/S34678", "B368/S245", "B2/S", "B34/S34", "B3/S012345678", "B35678/S5678"])
    return f"life=s=320x180:seed={seed}:rule={rule}:ratio={rng.uniform(0.2, 0.6):.2f}:mold=25:death_color=#{rng.randrange(1 << 24):06x}"


def distractors(count: int, seconds: float = 24.0) -> list[Clip]:
    rng = random.Random(19)
    out = []
    for n in range(count):
        rate = 25 if n % 3 == 2 else 30
        out.append(Clip(f"d{n:03d}", f"{_family(n, rng)}:rate={rate}", seconds, "320x180"))
    return out


def traced(kinds: list[str], seconds: float = 150.0) -> list[Clip]:
    return [Clip(f"t-{k}", CONTENT[k].replace("1280x720", "854x480").replace("1280:720", "854:480"), seconds, "854x480")
            for k in kinds]


def render(clip: Clip, dest: Path) -> Path:
    if dest.exists() and dest.stat().st_size > 0:
        return dest
    tmp = dest.with_suffix(".part.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", clip.lavfi, "-t", str(clip.seconds),
                    "-vf", f"scale={clip.size.replace('x', ':')},format=yuv420p", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", str(tmp)], check=True, capture_output=True)
    tmp.rename(dest)
    return dest
