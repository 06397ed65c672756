"""Benchmark: cost of forensic A/B watermarking over a plain ladder encode.

Same machine, same run, same generated 1280x720 clip:
  plain     one ffmpeg: decode once, split, scale, x264 per rung (same settings),
            then the same CMAF packaging and the same AAC audio encode
  pipeline  watermark_svc.media.pipeline.process: decode once, +/- pattern in
            numpy, x264 A and B per rung, packaging, A/B checks, thumbnails
Reports wall-time ratio (goal <= 2.1x: the A/B design encodes everything twice),
CPU seconds (getrusage of children, plus the pipeline's own numpy work), output
size of variant A vs plain at equal settings, and the watermark's PSNR cost.

Usage: python bench/processing/run.py [--seconds 24] [--preset fast]
Writes bench/results/processing.json and processing.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "watermark-svc"), str(ROOT)]

from watermark_svc.media import ffmpeg_cmd, pipeline  # noqa: E402
from watermark_svc.media.chunks import encode_audio  # noqa: E402
from watermark_svc.media.ffmpeg_cmd import EncodeSettings  # noqa: E402
from watermark_svc.media.plan import plan_job  # noqa: E402
from watermark_svc.media.probe import probe  # noqa: E402
from watermark_svc.media.procs import ProcessGroup  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def sh(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return proc.stderr


def make_clip(path: Path, seconds: int) -> None:
    # Moving test pattern + mild temporal grain + tone: not trivially compressible.
    sh(["ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=2:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(path)])


class Meter:
    """Wall time and CPU seconds (own process + waited-for children)."""

    def __enter__(self):
        self.t0 = time.monotonic()
        self.c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.s0 = resource.getrusage(resource.RUSAGE_SELF)
        return self

    def __exit__(self, *exc):
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = time.monotonic() - self.t0
        self.cpu_children = (c1.ru_utime - self.c0.ru_utime) + (c1.ru_stime - self.c0.ru_stime)
        self.cpu_self = (s1.ru_utime - self.s0.ru_utime) + (s1.ru_stime - self.s0.ru_stime)
        self.cpu = self.cpu_children + self.cpu_self


def plain_ladder(src: Path, out: Path, preset: str) -> dict:
    """The no-watermark baseline with identical x264 + packaging settings."""
    info = probe(str(src))
    plan = plan_job(info, 2.0)
    s = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment, preset=preset)
    work = out / "work"
    work.mkdir(parents=True)
    encoded = [work / f"{r.name}.nut" for r in plan.rungs]
    # The audio as the pipeline makes it (decode, then AAC), beside the ladder; its error,
    # if any, raised here.
    group = ProcessGroup(work / "logs")
    with ThreadPoolExecutor(1) as pool:
        audio = pool.submit(encode_audio, src, out, info.duration_s, group)
        try:
            sh(ffmpeg_cmd.plain_ladder_cmd(str(src), list(plan.rungs), plan.mezz_width,
                                           plan.mezz_height, s, [str(p) for p in encoded]))
            audio.result()
        finally:
            group.kill_all()
    sizes = {}
    for r, enc in zip(plan.rungs, encoded):
        d = out / "video" / r.name
        d.mkdir(parents=True)
        sh(ffmpeg_cmd.package_cmd(str(enc), str(d), plan.segment_seconds))
        sizes[r.name] = sum(p.stat().st_size for p in d.glob("*.m4s"))
    shutil.rmtree(work)
    return sizes


def luma_psnr(a: Path, b: Path) -> float:
    err = subprocess.run(["ffmpeg", "-nostdin", "-i", str(a), "-i", str(b), "-lavfi",
                          "[0:v][1:v]psnr", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    return float(re.search(r"PSNR y:([\d.]+)", err).group(1))


def concat(init: Path, segs: list[Path], dest: Path) -> Path:
    with open(dest, "wb") as fh:
        for p in [init, *segs]:
            fh.write(p.read_bytes())
    return dest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=24)
    ap.add_argument("--preset", default=pipeline.DEFAULT_PRESET)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-processing-"))
    try:
        src = tmp / "src.mp4"
        make_clip(src, args.seconds)
        with Meter() as plain_m:
            plain_sizes = plain_ladder(src, tmp / "plain", args.preset)
        # Alternative fan-out first (one x264 process per rung and variant), for
        # the record; then the default the ratio is reported for.
        with Meter() as alt_m:
            pipeline.process(src, tmp / "wm_alt", "bench-video", os.urandom(32),
                             preset=args.preset, fan_out="per-rung")
        shutil.rmtree(tmp / "wm_alt")
        with Meter() as wm_m:
            meta = pipeline.process(src, tmp / "wm", "bench-video", os.urandom(32),
                                    preset=args.preset)
        a_sizes = {r["name"]: sum(r["segments"]["a"]) for r in meta["renditions"]}
        b_sizes = {r["name"]: sum(r["segments"]["b"]) for r in meta["renditions"]}
        top = meta["renditions"][0]["name"]
        wm_top = concat(tmp / "wm/video" / top / "init.mp4",
                        sorted((tmp / "wm/video" / top / "a").glob("*.m4s")), tmp / "wm_top.mp4")
        plain_top = concat(tmp / "plain/video" / top / "init.mp4",
                           sorted((tmp / "plain/video" / top).glob("*.m4s")), tmp / "plain_top.mp4")
        psnr_plain = luma_psnr(plain_top, src)
        psnr_wm = luma_psnr(wm_top, src)
        psnr_between = luma_psnr(wm_top, plain_top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    plain_total, a_total = sum(plain_sizes.values()), sum(a_sizes.values())
    result = {
        "clip": {"width": 1280, "height": 720, "fps": 30, "seconds": args.seconds,
                 "content": "testsrc2 + temporal noise alls=2 + 440 Hz tone"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "x264_preset": args.preset,
        "rungs": [r["name"] for r in meta["renditions"]],
        "plain": {"wall_s": round(plain_m.wall, 2), "cpu_s": round(plain_m.cpu, 2)},
        "pipeline_ab": {"wall_s": round(wm_m.wall, 2), "cpu_s": round(wm_m.cpu, 2),
                        "cpu_children_s": round(wm_m.cpu_children, 2),
                        "cpu_python_s": round(wm_m.cpu_self, 2)},
        "pipeline_ab_per_rung_processes": {
            "wall_s": round(alt_m.wall, 2), "cpu_s": round(alt_m.cpu, 2),
            "wall_ratio": round(alt_m.wall / plain_m.wall, 3),
            "cpu_ratio": round(alt_m.cpu / plain_m.cpu, 3)},
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "wall_ratio": round(wm_m.wall / plain_m.wall, 3),
        "cpu_ratio": round(wm_m.cpu / plain_m.cpu, 3),
        "realtime_factor_pipeline": round(args.seconds / wm_m.wall, 3),
        "bytes": {"plain": plain_sizes, "variant_a": a_sizes, "variant_b": b_sizes},
        "size_overhead_a_vs_plain": round(a_total / plain_total - 1, 4),
        "storage_overhead_ab_vs_plain": round((a_total + sum(b_sizes.values())) / plain_total - 1, 4),
        "psnr_y_top_rung_db": {"plain_vs_source": round(psnr_plain, 2),
                               "watermarked_vs_source": round(psnr_wm, 2),
                               "watermarked_vs_plain": round(psnr_between, 2)},
        "goal_wall_ratio": 2.1,
    }
    result["machine"]["ffmpeg"] = subprocess.run(
        ["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "processing.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(RESULTS / "processing.md", render_md(result))
    print(json.dumps(result, indent=2))


def render_md(r: dict) -> str:
    p, w = r["plain"], r["pipeline_ab"]
    q = r["psnr_y_top_rung_db"]
    verdict = "meets" if r["wall_ratio"] <= r["goal_wall_ratio"] else "misses"
    return f"""# Processing benchmark: A/B forensic watermark vs plain ladder

Clip: {r['clip']['seconds']} s, 1280x720 @ 30 fps ({r['clip']['content']}); ladder
{', '.join(r['rungs'])}; x264 preset `{r['x264_preset']}`; {r['machine']['cpus']} CPUs;
{r['machine']['ffmpeg']}. Generated by `bench/processing/run.py` (one run).

| | wall s | CPU s |
|---|---:|---:|
| plain ladder (one ffmpeg, same x264 + packaging) | {p['wall_s']} | {p['cpu_s']} |
| A/B pipeline (`pipeline.process`) | {w['wall_s']} | {w['cpu_s']} (python/numpy {w['cpu_python_s']}) |
| **ratio** | **{r['wall_ratio']}x** | {r['cpu_ratio']}x |
| alternative: one x264 process per rung and variant | {r['pipeline_ab_per_rung_processes']['wall_s']} ({r['pipeline_ab_per_rung_processes']['wall_ratio']}x) | {r['pipeline_ab_per_rung_processes']['cpu_s']} ({r['pipeline_ab_per_rung_processes']['cpu_ratio']}x) |

Default fan-out: one encoder process per variant (split + scale inside ffmpeg), so each
raw frame crosses a pipe twice instead of 2 x rungs times. Load average after the run:
{r['load_average_after']} (this machine was shared with other builds; timings are noisy).

The pipeline {verdict} the <= {r['goal_wall_ratio']}x wall-time goal (every rung is encoded
twice, so 2x is the floor). It runs at {r['realtime_factor_pipeline']}x real time here.

Size: variant A is {100 * r['size_overhead_a_vs_plain']:+.2f}% vs plain at equal settings
(rate control targets the rung bitrate, so the cost shows as quality, below); storing
A+B is {100 * r['storage_overhead_ab_vs_plain']:+.1f}% vs a plain ladder.

Quality of the top rung (luma PSNR): plain vs source {q['plain_vs_source']} dB, watermarked vs
source {q['watermarked_vs_source']} dB, watermarked vs plain {q['watermarked_vs_plain']} dB.
On grainy content the last figure is bounded by x264's own coding noise (two encodes of
almost the same input diverge); on smooth content the tests measure ~48 dB.
"""


if __name__ == "__main__":
    main()
