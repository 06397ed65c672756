"""Helpers for the media tests: synthetic clips (never committed media), PSNR,
A/B segment mixing, re-encoding a "leaked" copy."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path


def run(argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{argv[0]} failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return proc


def make_clip(path: Path, width: int, height: int, seconds: float, *, fps: int = 30,
              source: str = "testsrc2", noise: int = 3, audio: bool = True,
              faststart: bool = False) -> Path:
    """A synthetic, high-quality (near-lossless) H.264 clip with optional tone."""
    # ``source``: a lavfi source's name, or name=options (size and rate are appended).
    video = f"{source}{':' if '=' in source else '='}size={width}x{height}:rate={fps}"
    if noise:
        video += f",noise=alls={noise}:allf=t"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", video]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    argv += ["-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
             "-pix_fmt", "yuv420p"]
    argv += ["-c:a", "aac", "-b:a", "96k"] if audio else ["-an"]
    if faststart:
        argv += ["-movflags", "+faststart"]
    run(argv + [str(path)])
    return path


def ffprobe_json(path: Path, *extra: str) -> dict:
    return json.loads(run(["ffprobe", "-v", "error", "-of", "json", *extra, str(path)]).stdout)


def count_frames(path: Path) -> int:
    info = ffprobe_json(path, "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames")
    return int(info["streams"][0]["nb_read_frames"])


def decode_errors(path: Path) -> str:
    """stderr of a full strict decode; empty means it decoded cleanly."""
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
                           "-f", "null", "-"], capture_output=True, text=True)
    return proc.stderr.strip() + ("" if proc.returncode == 0 else f" (exit {proc.returncode})")


def psnr(a: Path, b: Path) -> dict[str, float]:
    """ffmpeg psnr filter, per plane and average (dB); inputs must match in size."""
    proc = subprocess.run(["ffmpeg", "-nostdin", "-i", str(a), "-i", str(b),
                           "-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"],
                          capture_output=True, text=True)
    m = re.search(r"PSNR y:([\d.inf]+) u:([\d.inf]+) v:([\d.inf]+) average:([\d.inf]+)",
                  proc.stderr)
    assert m, proc.stderr[-1000:]
    return dict(zip(("y", "u", "v", "average"), map(float, m.groups())))


def concat_variant_stream(out_dir: Path, rung: str, bits: list[int], dest: Path,
                          audio: bool = False) -> Path:
    """init + segment i from A (bit 1) or B (bit 0): what one session would receive."""
    base = out_dir / "video" / rung
    with open(dest, "wb") as fh:
        fh.write((base / "init.mp4").read_bytes())
        for i, bit in enumerate(bits):
            fh.write((base / ("a" if bit else "b") / f"{i:05d}.m4s").read_bytes())
    return dest


def leak_copy(src: Path, dest: Path, height: int, crf: int = 28) -> Path:
    """What a pirate would do: downscale and re-encode with x264."""
    run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src),
         "-vf", f"scale=-2:{height}", "-c:v", "libx264", "-preset", "medium",
         "-crf", str(crf), "-an", str(dest)])
    return dest
