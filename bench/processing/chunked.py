"""Benchmark: chunked A/B encoding — time to playable, time to the full ladder, scale-out.

Same machine, same run, same generated clip (1280x720 or 1920x1080, 30 fps, tone):
  plain     the plain ffmpeg ladder of the same rungs (bench/processing/run.py: one
            decode, same x264 + packaging, audio)
  chunked   the media-layer tasks a queue hands out (media/chunks.py), laid out as the
            queue lays out the jobs (handlers._enqueue_work): probe + plan once, then W
            worker processes in queue order: audio, the lowest rung's chunks first (they
            make the video playable), then one task per higher rung x chunk (each
            decodes its chunk again, as a 'video.chunk' job does), lower rungs first.
            Each task writes to its own directory, as a worker would.
Reports time to playable (probe + lowest rung + audio, from the start) as a fraction of
the clip's duration (goal <= 0.5x), time to the full ladder vs plain (P4, goal <= 2.1x),
every task's wall/CPU seconds, and, from those measured costs, the modelled time for a
1-hour video on 1/2/4/8/16 workers (greedy list scheduling of (rungs - 1) x n + n + 1
tasks in queue order; a worker costs what one of the W workers measured here cost,
sharing this machine). Storing to S3, the forensic reference and the queue's own
overhead are not included.

Each task's ffmpeg children run as nice as a worker runs them for the task's queue priority
(svcommon.jobworker.child_niceness: higher rungs +10); BENCH_NICE=0 runs them all alike.

Usage: python bench/processing/chunked.py [--height 720] [--seconds 24] [--workers 2]
           [--segments-per-chunk 15] [--preset fast] [--x264-threads N] [--compare-threads 0]
Writes bench/results/processing_chunked_{height}p.json and .md (BENCH_RESULTS: another folder).
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "watermark-svc"), str(ROOT / "common"), str(Path(__file__).parent), str(ROOT)]

from run import Meter, plain_ladder, sh  # noqa: E402
from watermark_svc.media import pipeline  # noqa: E402
from watermark_svc.media.chunks import encode_audio, encode_chunk, plan_chunks  # noqa: E402
from watermark_svc.media.ffmpeg_cmd import EncodeSettings  # noqa: E402
from watermark_svc.media.plan import plan_job  # noqa: E402
from watermark_svc.media.probe import probe  # noqa: E402
from watermark_svc.media.procs import ProcessGroup  # noqa: E402
from watermark_svc.settings import SETTINGS  # noqa: E402
from watermark_svc.encode_state import AUDIO_PRIORITY, HIGHER_RUNG_PRIORITY, LOWEST_RUNG_PRIORITY  # noqa: E402
from svcommon import ffmpeg as ff  # noqa: E402
from svcommon.jobworker import child_niceness  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402

WORKER_X264_THREADS = next(s.default for s in SETTINGS if s.name == "X264_THREADS")

RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results"))
# Each task's queue priority (handlers._enqueue_work, relative to the planning job's 0), and
# so its children's niceness; BENCH_NICE=0: every task at the same niceness, for comparison.
PRIORITY = {"audio": AUDIO_PRIORITY, "low": LOWEST_RUNG_PRIORITY, "high": HIGHER_RUNG_PRIORITY}
NICE = os.environ.get("BENCH_NICE", "1") != "0"
SECRET = b"bench-secret-0123456789abcdef012"
HOUR_S = 3600


def make_clip(path: Path, width: int, height: int, seconds: int) -> None:
    sh(["ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30,noise=alls=2:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(path)])


def _plan(src: str, preset: str, threads: int):
    info = probe(src)
    plan = plan_job(info)
    return info, plan, EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment, preset=preset,
                                      threads=threads)


def run_task(task: dict) -> dict:
    """One queue job, in a worker process: its wall and CPU seconds (children included).
    The plan comes with the task (a chunk job reads it from the plan row, it never probes).
    Its ffmpeg children run as nice as the worker runs them for the job's queue priority."""
    with Meter() as m, ff.niceness(child_niceness(PRIORITY[task["kind"]] if NICE else 0)):
        out = Path(task["out"])
        out.mkdir(parents=True)
        group = ProcessGroup(out / "logs")
        try:
            if task["kind"] == "audio":
                encode_audio(task["src"], out, task["duration_s"], group)
            else:
                plan = task["plan"]
                rungs = [r for r in plan.rungs if r.name == task["rung"]]
                encode_chunk(task["src"], plan, task["settings"], SECRET, "bench", 1.0, rungs, task["chunk_obj"],
                             out, group)
        finally:
            group.kill_all()
    return {**{k: task[k] for k in ("kind", "chunk", "rung")}, "wall_s": round(m.wall, 3),
            "cpu_s": round(m.cpu, 3)}


def queue_tasks(base: dict, plan, chunks) -> list[dict]:
    """The jobs in queue order: audio, the lowest rung's chunks (priority +5), then one job
    per higher rung x chunk (-1, enqueued lowest rung first: handlers._enqueue_work)."""
    tasks = [{**base, "kind": "audio", "chunk": None, "rung": None}]
    for rung in reversed(plan.rungs):
        kind = "low" if rung is plan.rungs[-1] else "high"
        tasks += [{**base, "kind": kind, "chunk": c.index, "chunk_obj": c, "rung": rung.name} for c in chunks]
    return tasks


def chunked_run(src: Path, tmp: Path, workers: int, spc: int, preset: str, threads: int) -> dict:
    t0 = time.monotonic()
    with Meter() as plan_m:
        info, plan, settings = _plan(str(src), preset, threads)
        chunks = plan_chunks(plan, info.duration_s, spc)
    low = [plan.rungs[-1].name]
    high = [r.name for r in reversed(plan.rungs[:-1])]          # queue order: lower first
    tasks = queue_tasks({"src": str(src), "plan": plan, "settings": settings, "duration_s": info.duration_s},
                        plan, chunks)
    for i, t in enumerate(tasks):
        t["out"] = str(tmp / f"task{i:04d}")
    needed = {(t["kind"], t["chunk"]) for t in tasks if t["kind"] in ("audio", "low")}
    done, playable_at = [], None
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(run_task, t) for t in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            done += [f.result() for f in finished]
            if playable_at is None and needed <= {(d["kind"], d["chunk"]) for d in done}:
                playable_at = time.monotonic() - t0
    return {"plan_s": round(plan_m.wall, 3), "playable_s": round(playable_at, 3),
            "full_s": round(time.monotonic() - t0, 3), "chunks": len(chunks),
            "low_rung": low, "high_rungs": high, "tasks": done}


def model(costs: dict, plan_s: float, video_s: float, chunk_s: float, workers: int) -> dict:
    """Greedy list scheduling of a video_s video's jobs in queue order on `workers`: audio,
    n lowest-rung chunks, then n chunks of each higher rung (lower rungs first)."""
    n = max(1, round(video_s / chunk_s))
    order = [costs["audio"] * video_s / costs["audio_video_s"]] + [costs["low"]] * n
    for rung in costs["high_rungs"]:
        order += [costs["high"][rung]] * n
    free = [plan_s] * workers
    heapq.heapify(free)
    ends = []
    for cost in order:
        start = heapq.heappop(free)
        ends.append(start + cost)
        heapq.heappush(free, start + cost)
    return {"workers": workers, "playable_s": round(max(ends[:n + 1]), 1), "full_s": round(max(ends), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--height", type=int, choices=(720, 1080), default=720)
    ap.add_argument("--seconds", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--segments-per-chunk", type=int, default=15)
    ap.add_argument("--preset", default=pipeline.DEFAULT_PRESET)
    ap.add_argument("--x264-threads", type=int, default=WORKER_X264_THREADS,
                    help="x264 threads per encoder, as the worker's X264_THREADS (default: its default)")
    ap.add_argument("--compare-threads", type=int, default=None,
                    help="also time the full ladder with this many x264 threads per encoder, same run")
    args = ap.parse_args()
    width = {720: 1280, 1080: 1920}[args.height]
    tmp = Path(tempfile.mkdtemp(prefix="bench-chunked-"))
    try:
        src = tmp / "src.mp4"
        make_clip(src, width, args.height, args.seconds)
        with Meter() as plain_m:
            plain_ladder(src, tmp / "plain", args.preset)
        run = chunked_run(src, tmp / "chunked", args.workers, args.segments_per_chunk, args.preset,
                          args.x264_threads)
        other = None if args.compare_threads is None else chunked_run(
            src, tmp / "chunked-other", args.workers, args.segments_per_chunk, args.preset, args.compare_threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tasks = run["tasks"]
    # Full-length chunks only for the per-chunk cost (the last one may be short).
    full = [t for t in tasks if t["kind"] != "audio" and t["chunk"] < run["chunks"] - 1] or \
        [t for t in tasks if t["kind"] != "audio"]
    chunk_s = args.segments_per_chunk * 2.0 if run["chunks"] > 1 else args.seconds
    costs = {"low": max(t["wall_s"] for t in full if t["kind"] == "low"), "high_rungs": run["high_rungs"],
             "high": {r: max(t["wall_s"] for t in full if t["rung"] == r) for r in run["high_rungs"]}}
    costs["audio"] = next(t["wall_s"] for t in tasks if t["kind"] == "audio")
    costs["audio_video_s"] = args.seconds
    high_per_chunk = round(sum(costs["high"].values()), 3)        # every higher rung of one chunk
    result = {
        "clip": {"width": width, "height": args.height, "fps": 30, "seconds": args.seconds},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True,
                                             text=True).stdout.splitlines()[0]},
        "x264_preset": args.preset, "x264_threads": args.x264_threads, "workers": args.workers,
        "segments_per_chunk": args.segments_per_chunk,
        "plain_wall_s": round(plain_m.wall, 2),
        **{k: run[k] for k in ("plan_s", "playable_s", "full_s", "chunks", "low_rung", "high_rungs")},
        "playable_vs_duration": round(run["playable_s"] / args.seconds, 3),
        "full_vs_plain": round(run["full_s"] / plain_m.wall, 3),
        "tasks": sorted(tasks, key=lambda t: (t["kind"], t["rung"] or "", t["chunk"] or 0)),
        "per_chunk_wall_s": {"low": costs["low"], "high": high_per_chunk, "per_rung": costs["high"]},
        "critical_path_s": round(run["plan_s"] + max([costs["low"], *costs["high"].values()]), 2),
        "model_1h": [model(costs, run["plan_s"], HOUR_S, chunk_s, w) for w in (1, 2, 4, 8, 16)],
        "compared_threads": None if other is None else {
            "x264_threads": args.compare_threads, "playable_s": other["playable_s"], "full_s": other["full_s"],
            "full_vs_plain": round(other["full_s"] / plain_m.wall, 3),
            "cpu_s": round(sum(t["cpu_s"] for t in other["tasks"]), 1)},
        "cpu_s": round(sum(t["cpu_s"] for t in tasks), 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "goals": {"playable_vs_duration": 0.5, "full_vs_plain": 2.1},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"processing_chunked_{args.height}p"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(RESULTS / f"{name}.md", render_md(result))
    print(json.dumps({k: v for k, v in result.items() if k != "tasks"}, indent=2))


def _compared(r: dict) -> str:
    c = r.get("compared_threads")
    if not c:
        return ""
    return (f"| same chunked run with {c['x264_threads']} x264 thread(s) per encoder (0: x264's choice), "
            f"full ladder | {c['full_s']} | {c['full_vs_plain']}x plain | |\n"
            f"| (its time to playable) | {c['playable_s']} | | |\n"
            f"| (its CPU seconds, all tasks) | {c['cpu_s']} | | |")


def render_md(r: dict) -> str:
    rows = "\n".join(f"| {m['workers']} | {m['playable_s']} | {m['full_s']} |" for m in r["model_1h"])
    return f"""# Chunked processing: time to playable, full ladder, scale-out ({r['clip']['height']}p)

Clip: {r['clip']['seconds']} s {r['clip']['width']}x{r['clip']['height']} @ 30 fps; x264 `{r['x264_preset']}`,
{r['x264_threads']} thread(s) per encoder in the chunk jobs (the worker's `X264_THREADS`; the plain ladder: x264's own choice);
{r['workers']} worker processes on {r['machine']['cpus']} CPUs; chunks of {r['segments_per_chunk']} segments
({r['chunks']} per rung; one job per rung x chunk); lowest rung {r['low_rung']} first, then {r['high_rungs']}.
Generated by `bench/processing/chunked.py` (one run; load average after: {r['load_average_after']}).
Media layer only: storing to S3 and queue hand-offs are not included.

| | seconds | ratio | goal |
|---|---:|---:|---:|
| time to playable (probe + lowest rung A/B + audio) | {r['playable_s']} | {r['playable_vs_duration']}x duration | <= {r['goals']['playable_vs_duration']}x |
| time to full ladder | {r['full_s']} | {r['full_vs_plain']}x plain | <= {r['goals']['full_vs_plain']}x |
| plain ffmpeg ladder (same rungs, same x264) | {r['plain_wall_s']} | | |
{_compared(r)}

CPU seconds of all chunked tasks: {r['cpu_s']}.

Per-chunk cost (wall s, slowest full chunk): lowest rung {r['per_chunk_wall_s']['low']},
higher rungs {r['per_chunk_wall_s']['high']} in all (one job per rung, each decoding the chunk:
{r['per_chunk_wall_s']['per_rung']}); critical path (plan + slowest job) {r['critical_path_s']} s.

Modelled 1-hour video of this resolution (from the measured chunk costs, each worker as
fast as one of the {r['workers']} measured here):

| workers | playable s | full ladder s |
|---:|---:|---:|
{rows}
"""


if __name__ == "__main__":
    main()
