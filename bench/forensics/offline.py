"""Shared by the offline forensics benchmarks (collusion.py, controls.py): no stack, the
detector's own code over local files.

Importing this module puts the checkout's watermark-svc/, watermark-svc/tests and common/
first on sys.path, so the code benchmarked is this checkout's. It makes a synthetic source,
processes it with the real pipeline once (kept in a work folder, a rerun reuses it), gives
seeded session ids and re-encodes a copy as a pirate would.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _p in ("common", "watermark-svc/tests", "watermark-svc"):
    if str(ROOT / _p) not in sys.path:
        sys.path.insert(0, str(ROOT / _p))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))          # bench.reportfile
from watermark_svc.forensics import trace as trace_module  # noqa: E402
from watermark_svc.media import process  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CODE = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                      text=True).stdout.strip() or "unknown"
# The collusion benchmark's content: a test pattern with temporal grain.
TESTSRC = "testsrc2=size=480x270:rate=30,noise=alls=2:allf=t"


def make_source(dest: Path, lavfi: str, seconds: float) -> Path:
    """A near-lossless synthetic source from a lavfi graph (made once: an existing one is kept)."""
    dest = Path(dest)
    if not dest.exists():
        tmp = dest.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi, "-t", str(seconds),
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "14", "-pix_fmt", "yuv420p", str(tmp)],
                       check=True, capture_output=True)
        tmp.rename(dest)
    return dest


def prepare(work: Path, seconds: int, video_id: str, secret: bytes, lavfi: str = TESTSRC) -> dict:
    """The processed video in `work` (src.mp4, out/, meta.json), built once; a rerun reuses it."""
    meta_path = work / "meta.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    work.mkdir(parents=True, exist_ok=True)
    src = make_source(work / "src.mp4", lavfi, seconds)
    meta = process(src, work / "out", video_id, secret)
    info = {"src": str(src), "out": str(work / "out"), "n": meta["segment_count"], "rung": meta["renditions"][0]["name"]}
    meta_path.write_text(json.dumps(info))
    return info


def session_ids(n: int, seed: int | str = 19) -> list[str]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(n)]


def reencode(src: Path, dest: Path, height: int = 180, crf: int = 28, start: float | None = None,
             length: float | None = None) -> Path:
    """The pirate's re-encode: an optional window, scaled to `height`, x264 veryfast at `crf`, no audio."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    if start is not None:
        argv += ["-ss", f"{start:.2f}"]
    argv += ["-i", str(src)]
    if length is not None:
        argv += ["-t", str(length)]
    subprocess.run(argv + ["-vf", f"scale=-2:{height}", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
                           "-an", str(dest)], check=True, capture_output=True)
    return Path(dest)


@contextmanager
def captured_readouts():
    """Keep every full readout trace() takes (read_bits without a frame limit: not the short
    probes _pick_lag reads between fingerprint lags): the evidence it then scores."""
    real = trace_module.read_bits
    got: list = []

    def spy(copy, source, pattern, alignment, progress=None):
        r = real(copy, source, pattern, alignment, progress=progress)
        if alignment.max_frames is None:
            got.append(r)
        return r
    trace_module.read_bits = spy
    try:
        yield got
    finally:
        trace_module.read_bits = real
