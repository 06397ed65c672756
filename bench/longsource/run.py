"""Benchmark: memory of media.pipeline.process on a long source stays flat.

Same run, same generated source type (320x180 unless --size, 30 fps, grain + tone), two lengths:
  anchor   --anchor-minutes (1) of video
  long     --minutes (10) of video
each processed by media.pipeline.process in its own Python process. A sampler reads the RSS
of that process and of all its descendants (ffmpeg decoders/encoders) every 0.2 s.
Reported: peak RSS of the Python process and of the whole tree, for both lengths, their
ratio long/anchor (flat memory: ~1.0, whatever the length), the RSS at 25/50/75 % of the
long run (no growth with time), wall time per media second, and the scratch output per
media second; from these, what a 2-hour source costs (memory measured to be flat; time and
scratch disk scale with length).

Usage: python bench/longsource/run.py [--minutes 10] [--anchor-minutes 1] [--preset veryfast] [--size 320x180]
Writes bench/results/longsource.json and longsource.md (longsource-{size}.* for another --size).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from ingest_helpers import children, rss_mb  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RUN = ("import sys; from watermark_svc.media import pipeline; "
       "pipeline.process(sys.argv[1], sys.argv[2], 'bench-long', b'bench-secret-0123456789abcdef012', "
       "preset=sys.argv[3])")


def make_source(path: Path, seconds: int, size: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30,noise=alls=2:allf=t",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(path)], check=True)


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def run_one(source: Path, work: Path, preset: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "watermark-svc"), str(ROOT / "common")])}
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(source), str(work / "out"), preset], env=env,
                            stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float, float]] = []     # (t, python MB, tree MB)
    done = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not done.wait(0.2):
            pids = tree(proc.pid)
            samples.append((time.monotonic() - t0, rss_mb(proc.pid), sum(rss_mb(p) for p in pids)))

    started = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"pipeline failed:\n{err[-2000:]}")
    scratch = sum(f.stat().st_size for f in (work / "out").rglob("*") if f.is_file())
    at = {f"{int(q * 100)}%": round(max((s[2] for s in samples if s[0] <= q * wall), default=0.0), 1)
          for q in (0.25, 0.5, 0.75)}
    return {"wall_s": round(wall, 1), "peak_rss_mb_python": round(max(s[1] for s in samples), 1),
            "peak_rss_mb_tree": round(max(s[2] for s in samples), 1), "tree_rss_mb_peak_until": at,
            "scratch_bytes": scratch, "samples": len(samples)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--anchor-minutes", type=float, default=1)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--size", default="320x180", help="source picture size (memory grows with it, not with length)")
    args = ap.parse_args()
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                 "source": f"{args.size} 30 fps testsrc2 + grain, AAC tone", "preset": args.preset}
    with tempfile.TemporaryDirectory(prefix="sv-bench-long-") as tmp:
        for name, minutes in (("anchor", args.anchor_minutes), ("long", args.minutes)):
            work = Path(tmp) / name
            work.mkdir()
            seconds = int(minutes * 60)
            make_source(work / "src.mp4", seconds, args.size)
            result = run_one(work / "src.mp4", work, args.preset)
            result["media_seconds"] = seconds
            out[name] = result
            print(name, json.dumps(result), flush=True)
    a, b = out["anchor"], out["long"]
    out["peak_rss_ratio_long_vs_anchor"] = {
        "python": round(b["peak_rss_mb_python"] / a["peak_rss_mb_python"], 3),
        "tree": round(b["peak_rss_mb_tree"] / a["peak_rss_mb_tree"], 3)}
    per_s = b["wall_s"] / b["media_seconds"]
    scratch_per_s = b["scratch_bytes"] / b["media_seconds"]
    out["two_hour_estimate_at_this_size"] = {
        "peak_rss_mb_tree": b["peak_rss_mb_tree"], "wall_hours_one_process": round(per_s * 7200 / 3600, 2),
        "scratch_gb": round(scratch_per_s * 7200 / 1e9, 2)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "longsource" if args.size == "320x180" else f"longsource-{args.size}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    write_markdown(RESULTS / f"{stem}.md", report(out, args))
    print(json.dumps({k: out[k] for k in ("peak_rss_ratio_long_vs_anchor", "two_hour_estimate_at_this_size")}))
    return 0


def report(out: dict, args) -> str:
    a, b = out["anchor"], out["long"]
    rows = "\n".join(f"| {n} | {r['media_seconds']} | {r['wall_s']} | {r['peak_rss_mb_python']} | "
                     f"{r['peak_rss_mb_tree']} | {r['tree_rss_mb_peak_until']} | {r['scratch_bytes'] / 1e6:.1f} |"
                     for n, r in (("anchor", a), ("long", b)))
    est = out["two_hour_estimate_at_this_size"]
    return f"""# Long source: memory of media.pipeline.process

`python bench/longsource/run.py --minutes {args.minutes:g} --anchor-minutes {args.anchor_minutes:g} --preset {args.preset} --size {args.size}`
on {out['machine']['cpus']} CPUs; source {out['source']}.

| run | media s | wall s | peak RSS python MB | peak RSS tree MB | tree peak until 25/50/75 % | scratch MB |
|---|---|---|---|---|---|---|
{rows}

Peak RSS long / anchor: python {out['peak_rss_ratio_long_vs_anchor']['python']}x, tree {out['peak_rss_ratio_long_vs_anchor']['tree']}x
(flat memory: ~1.0 whatever the length).

2-hour source at this size, one process: memory as measured (flat, {est['peak_rss_mb_tree']} MB for the tree),
~{est['wall_hours_one_process']} h wall, ~{est['scratch_gb']} GB of scratch output (WORK_DIR) before it is stored.
Memory per process grows with the picture size (the decoded frame pipe, x264 lookahead per rung), not with length.
"""


if __name__ == "__main__":
    raise SystemExit(main())
