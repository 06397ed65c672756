"""Sessions' streams as a leaker holds them, and the copies colluders make by mixing two
of them: shared by the forensics accuracy tests and bench/forensics/collusion.py.

A stream is assembled from the stored A/B segments of `process()`'s output by the session's
codeword (svcommon.codeword), exactly what streaming-svc serves it, decrypted.

Mixing modes (two or more colluders):
  - ``alternate``: segment i from colluder i mod k (the interleaving attack);
  - ``random``: each segment from a colluder drawn with a seeded RNG;
  - ``minority``: where the colluders were served different variants, the one fewer of them
    hold (the vote that leaves every colluder at chance under the uniform code: three or
    more colluders; with two it is the first one's);
  - ``average``: every colluder's whole stream decoded and averaged frame by frame (ffmpeg
    ``mix``), so where their variants differ the watermark cancels, where they agree it stays.
"""
from __future__ import annotations

import random
import subprocess
from pathlib import Path

from svcommon import codeword as cw

MIX_MODES = ("alternate", "random", "average")
ALL_MIX_MODES = (*MIX_MODES, "minority")


def segment_path(out: Path, rung: str, variant: str, index: int) -> Path:
    return Path(out) / "video" / rung / variant / f"{index:05d}.m4s"


def session_stream(out, rung: str, secret: bytes, sid: str, n: int, dest, tag: bytes = b"",
                   code: cw.Code = cw.UNIFORM_CODE) -> Path:
    """What session `sid` receives, decrypted: init (+ its metadata tag) and segment i from
    variant A or B by its codeword under the video's code."""
    return _assemble(out, rung, [cw.variant(secret, sid, i, code) for i in range(n)], dest, tag)


def mixed_stream(out, rung: str, secret: bytes, sids: list[str], n: int, dest, mode: str,
                 seed: int = 0, code: cw.Code = cw.UNIFORM_CODE) -> Path:
    """The colluders' copy (before any re-encode), mixed by `mode` (see the module doc)."""
    if mode == "average":
        parts = [session_stream(out, rung, secret, sid, n, Path(dest).with_suffix(f".part{k}.mp4"), code=code)
                 for k, sid in enumerate(sids)]
        try:
            return average_streams(parts, dest)
        finally:
            for p in parts:
                p.unlink(missing_ok=True)
    if mode == "alternate":
        picks = [i % len(sids) for i in range(n)]
    elif mode == "random":
        rng = random.Random(seed)
        picks = [rng.randrange(len(sids)) for _ in range(n)]
    elif mode == "minority":
        return _assemble(out, rung, [_minority([cw.variant(secret, s, i, code) for s in sids]) for i in range(n)], dest)
    else:
        raise ValueError(f"unknown mixing mode {mode!r} (one of {ALL_MIX_MODES})")
    return _assemble(out, rung, [cw.variant(secret, sids[k], i, code) for i, k in enumerate(picks)], dest)


def _minority(held: list[str]) -> str:
    """The variant fewer colluders hold (a tie: the first colluder's)."""
    a = held.count("a")
    b = len(held) - a
    if a == 0 or b == 0 or a == b:
        return held[0]
    return "a" if a < b else "b"


def average_streams(streams: list[Path], dest) -> Path:
    """Frame-by-frame mean of equally long streams, re-encoded near-losslessly (the attack
    that follows does the lossy re-encode)."""
    inputs = [a for s in streams for a in ("-i", str(s))]
    graph = "".join(f"[{k}:v]" for k in range(len(streams))) + f"mix=inputs={len(streams)}[v]"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph,
                    "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8",
                    "-pix_fmt", "yuv420p", "-an", str(dest)], check=True, capture_output=True)
    return Path(dest)


def _assemble(out, rung: str, variants: list[str], dest, tag: bytes = b"") -> Path:
    with open(dest, "wb") as fh:
        fh.write((Path(out) / "video" / rung / "init.mp4").read_bytes() + tag)
        for i, v in enumerate(variants):
            fh.write(segment_path(out, rung, v, i).read_bytes())
    return Path(dest)
