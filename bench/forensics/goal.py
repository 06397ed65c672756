"""The goal attack (issue 19): any >= 120 s window, 480p or 360p, x264 CRF 28-32, a frame-rate
change and a 5 % crop, on five videos of different content (a test pattern, a texture, a dark
scene, a grainy one, and a near-duplicate of the first: the same footage uploaded again,
re-encoded and its first second cut, processed under its own id). How often is the leaker
identified, is anyone else ever accused, and how long does a trace take?

Offline (like collusion.py and controls.py): the detector's own code over local files.
Each video (854x480, 30 fps, --video-seconds long) is processed once by the real pipeline
(top rung only: the leaks are of the 480p stream) and has --sessions seeded session ids. Trial k
of a video: one of its sessions (seeded) is the leaker; its stream (the A/B segments its
codeword selects, decrypted) is attacked with seeded parameters drawn from the goal's ranges
(every trial applies all of them: window start, height 480 or 360, CRF 28-32, 25 or 24 fps,
a 5 % crop at a seeded position) and traced with trace() WITHOUT naming the video, over a
catalogue of all five videos and all their sessions (identification by the catalogue index;
for the pattern and its near-duplicate the watermark must decide). Trace time is trace()'s
own, in process, with the catalogue's analysis proxies and fingerprints made beforehand (the
service makes them when a video is processed).

Every trial is kept in --work (a rerun redoes only what is missing); results are rewritten
after each trial: bench/results/forensics-goal.{json,md}.

Usage: python bench/forensics/goal.py [--trials 20] [--sessions 1000] [--video-seconds 150]
       [--prepare-only]   (make and process the videos only: that part needs no idle machine)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline import CODE, RESULTS, ROOT, session_ids  # noqa: E402
from collusion_helpers import session_stream  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402
from watermark_svc.forensics import trace as trace_module  # noqa: E402
from watermark_svc.forensics.localcat import LocalCatalogue  # noqa: E402
from watermark_svc.media import process  # noqa: E402
from watermark_svc.media.ladder import choose_ladder  # noqa: E402
from watermark_svc.media.probe import probe  # noqa: E402

SECRET = b"bench-goal-secret-0123456789abcdef"
MAX_FAP = 1e-6
SIZE = "854x480"
# name: (video id, lavfi source or None for a near-duplicate, near-duplicate of, what it is)
VIDEOS = {
    "pattern": ("e1" * 16, f"testsrc2=size={SIZE}:rate=30", None, "test pattern, moving"),
    "texture": ("e2" * 16, f"cellauto=s={SIZE}:rate=30:rule=110:random_seed=7:random_fill_ratio=0.5,boxblur=2",
                None, "cellular-automaton texture"),
    # Seeded generators with every colour given: the same clip on every run (attacks.py).
    "dark": ("e3" * 16, f"gradients=s={SIZE}:rate=30:seed=7:speed=0.02:c0=0x101018:c1=0x283040:nb_colors=2,"
             "format=yuv420p,noise=c0s=6:c0f=t", None, "night sky, luma 11-54, light grain"),
    # Rule 30's chaos, drawn coarse and scaled up, its contrast halved so the heavy grain shows
    # everywhere (on pure black and white it would clip). Cheap to render, unlike a deep zoom.
    "grainy": ("e4" * 16, f"cellauto=s=284x160:rate=30:rule=30:random_seed=11:random_fill_ratio=0.3,"
               f"scale={SIZE.replace('x', ':')}:flags=bicubic,boxblur=1,format=yuv420p,lutyuv=y=0.5*val+60,"
               "noise=c0s=24:c0f=t+u", None, "chaotic texture (rule 30) under heavy film grain"),
    "pattern-twin": ("e5" * 16, None, "pattern", "near-duplicate: the pattern re-uploaded, re-encoded, 1 s cut"),
}
HEIGHTS, CRFS, FPS = (480, 360), (28, 29, 30, 31, 32), (25, 24)
WINDOW_S = 120
CROP = 0.95


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def sh(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


class Bench:
    def __init__(self, a):
        self.a, self.work = a, a.work
        self.work.mkdir(parents=True, exist_ok=True)
        self._catalogue: LocalCatalogue | None = None

    def source(self, v: str) -> Path:
        vid, lavfi, twin_of, _ = VIDEOS[v]
        dest = self.work / v / "src.mp4"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".part.mp4")
            if twin_of:
                sh(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "1", "-i", str(self.source(twin_of)),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-an", str(tmp)])
            else:
                sh(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi,
                    "-t", str(self.a.video_seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
                    "-pix_fmt", "yuv420p", str(tmp)])
            tmp.rename(dest)
        return dest

    def processed(self, v: str) -> dict:
        """The pipeline's output for v (top rung only), made once."""
        meta_path = self.work / v / "meta.json"
        if meta_path.exists():
            return json.loads(meta_path.read_text())
        src = self.source(v)
        began = time.monotonic()
        meta = process(src, self.work / v / "out", VIDEOS[v][0], SECRET, ladder=[choose_ladder(probe(str(src)))[0]])
        info = {"out": str(self.work / v / "out"), "n": meta["segment_count"], "rung": meta["renditions"][0]["name"],
                "duration": meta["duration"], "process_seconds": round(time.monotonic() - began, 1)}
        meta_path.write_text(json.dumps(info))
        return info

    def sessions(self, v: str) -> list[str]:
        return session_ids(self.a.sessions, f"goal:{v}")

    def catalogue(self) -> LocalCatalogue:
        """Every video and every session; proxies, fingerprints and index made before any trace."""
        if self._catalogue is None:
            cat = LocalCatalogue({VIDEOS[v][0]: str(self.source(v)) for v in VIDEOS},
                                 {s: VIDEOS[v][0] for v in VIDEOS for s in self.sessions(v)}, proxy_dir=self.work)
            began = time.monotonic()
            cat.ensure_indexed()
            log(f"catalogue ready: proxies, fingerprints, index in {time.monotonic() - began:.1f} s")
            self._catalogue = cat
        return self._catalogue

    def trial(self, v: str, k: int) -> dict:
        path = self.work / "trials" / f"{v}-{k}.json"
        if path.exists():
            return json.loads(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        info = self.processed(v)
        rng = random.Random(f"goal:{v}:{k}")
        leaker = rng.choice(self.sessions(v))
        p = {"start": round(rng.uniform(0, max(0.0, info["duration"] - WINDOW_S - 1)), 2),
             "height": rng.choice(HEIGHTS), "crf": rng.choice(CRFS), "fps": rng.choice(FPS),
             "crop_x": round(rng.random(), 3), "crop_y": round(rng.random(), 3)}
        stream, leak = self.work / "stream.mp4", self.work / "leak.mp4"
        try:
            return self._traced(v, k, info, leaker, p, stream, leak, path)
        finally:
            for f in (stream, leak):              # never left behind, whatever failed
                f.unlink(missing_ok=True)

    def _traced(self, v: str, k: int, info: dict, leaker: str, p: dict, stream: Path, leak: Path,
                path: Path) -> dict:
        session_stream(info["out"], info["rung"], SECRET, leaker, info["n"], stream)
        vf = (f"crop=w=iw*{CROP}:h=ih*{CROP}:x=(iw-ow)*{p['crop_x']}:y=(ih-oh)*{p['crop_y']},"
              f"fps={p['fps']},scale=-2:{p['height']}")
        sh(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{p['start']:.2f}", "-i", str(stream),
            "-t", str(WINDOW_S), "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(p["crf"]),
            "-an", str(leak)])
        cat = self.catalogue()
        load = os.getloadavg()[0]
        began = time.monotonic()
        r = trace_module.trace(str(leak), cat, SECRET, max_fap=MAX_FAP)
        seconds = time.monotonic() - began
        # Who the verdict accuses: only a match names anyone (an inconclusive verdict between
        # two videos whose watermarks each match a session accuses no one).
        accused = [r["match"]["session_id"], *r.get("also_accused", [])] if r.get("verdict") == "match" else []
        out = {"video": v, "trial": k, "code": CODE, "leaker": leaker, "attack": p,
               "verdict": r.get("verdict"), "video_found": r.get("video_id"),
               "right_video": r.get("video_id") == VIDEOS[v][0],
               "identified": bool(r.get("match")) and r["match"]["session_id"] == leaker,
               "innocents_accused": [s for s in accused if s != leaker],
               "sessions_tested": r.get("sessions_tested"), "segments_read": r.get("segments_read"),
               "candidates_read": r.get("attempts"), "fap": r.get("false_accusation_probability"),
               "ambiguity": bool(r.get("ambiguity")), "timings": r.get("timings"),
               "trace_seconds": round(seconds, 2), "load_at_start": round(load, 2),
               "conclusion": r.get("conclusion")}
        path.write_text(json.dumps(out))
        return out


def pct(xs: list[float], q: float) -> float | None:
    """The q-quantile (0-1) as scale_report's figures are taken (numpy, interpolated)."""
    return round(float(np.percentile(xs, 100 * q)), 1) if xs else None


def write(a, rows: list[dict], videos: dict, final: bool, started: float) -> None:
    out = {"complete": final, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
           "cpus": os.cpu_count(), "load": os.getloadavg(), "minutes_this_run": round((time.monotonic() - started) / 60, 1),
           "code": sorted({r["code"] for r in rows} | {CODE}), "max_fap": MAX_FAP, "sessions_per_video": a.sessions,
           "video_seconds": a.video_seconds, "videos": videos, "trials": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "forensics-goal.json").write_text(json.dumps(out, indent=1))
    write_markdown(RESULTS / "forensics-goal.md", markdown(out))


def _line(label: str, rows: list[dict]) -> str:
    n = len(rows)
    ok = sum(r["identified"] for r in rows)
    times = [r["trace_seconds"] for r in rows]
    return (f"| {label} | {n} | {ok} ({100 * ok / n:.0f} %) | {sum(len(r['innocents_accused']) for r in rows)} | "
            f"{sum(_wrong_video(r) for r in rows)} | {pct(times, 0.5)} / {pct(times, 0.95)} |")


def _wrong_video(r: dict) -> bool:
    """The trace settled on another video than the one leaked (not: found none)."""
    return r["video_found"] is not None and not r["right_video"]


def markdown(out: dict) -> str:
    rows = out["trials"]
    L = ["# Forensics benchmark: the goal attack on five videos", ""]
    if not out["complete"]:
        L += ["**Partial: the run was still going (or was cut short).**", ""]
    n, ok = len(rows), sum(r["identified"] for r in rows)
    innocents = sum(len(r["innocents_accused"]) for r in rows)
    L += [f"**{ok} of {n} leaks identified ({100 * ok / max(1, n):.1f} %), {innocents} innocents accused**; "
          f"trace time p50 {pct([r['trace_seconds'] for r in rows], 0.5)} s / p95 "
          f"{pct([r['trace_seconds'] for r in rows], 0.95)} s.", "",
          f"Offline run of `bench/forensics/goal.py` (detector code {', '.join(out['code'])}; {out['cpus']} cores, "
          f"host {out['host']}, finished {out['when']}; load average at each trace's start: median "
          f"{pct([r['load_at_start'] for r in rows], 0.5)}, max {max((r['load_at_start'] for r in rows), default=0)}).",
          "",
          f"Videos: {out['video_seconds']} s, 854x480, 30 fps, processed by the real pipeline (top rung: the leaks are "
          f"of the 480p stream); {out['sessions_per_video']} seeded sessions each. Each trial leaks one of them: "
          f"its decrypted stream, then every part of the goal attack with seeded parameters: a {WINDOW_S} s window "
          f"at a random start, {CROP:.0%} crop at a random position, {' or '.join(map(str, FPS))} fps, height "
          f"{' or '.join(map(str, HEIGHTS))}, x264 veryfast CRF {CRFS[0]}-{CRFS[-1]}. Traced with trace() without "
          f"naming the video, over a catalogue of all {len(out['videos'])} videos and their "
          f"{len(out['videos']) * out['sessions_per_video']} sessions (every session of a video read counts "
          f"toward the false-accusation bound); threshold {out['max_fap']:g}. Trace time is trace()'s own, in "
          "process, the catalogue's proxies, fingerprints and index made beforehand.", "",
          "| video | content | process s |", "|---|---|---|"]
    for v, info in out["videos"].items():
        L.append(f"| {v} | {VIDEOS[v][3]} | {info.get('process_seconds')} |")
    L += ["", "| leaks of | trials | identified | innocents accused | wrong video | trace p50 / p95 s |",
          "|---|---|---|---|---|---|"]
    for v in out["videos"]:
        mine = [r for r in rows if r["video"] == v]
        if mine:
            L.append(_line(v, mine))
    if rows:
        L.append(_line("**all**", rows))
    L += ["", "By attack parameter:", "", "| parameter | trials | identified | innocents accused | wrong video | "
          "trace p50 / p95 s |", "|---|---|---|---|---|---|"]
    for key, values in (("height", HEIGHTS), ("fps", FPS), ("crf", CRFS)):
        for val in values:
            mine = [r for r in rows if r["attack"][key] == val]
            if mine:
                L.append(_line(f"{key} {val}", mine))
    misses = [r for r in rows if not r["identified"]]
    L += ["", f"Not identified: {len(misses)}."]
    for r in misses:
        L.append(f"- {r['video']} trial {r['trial']} ({r['attack']}): {r['verdict']}: {r['conclusion']}")
    twins = [r for r in rows if r["video"] in ("pattern", "pattern-twin")]
    if twins:
        L += ["", f"Near-duplicates: {len(twins)} leaks of the pattern or its re-upload; the watermark chose the "
              f"right one of the two in {sum(r['right_video'] for r in twins)} (both read in "
              f"{sum((r['candidates_read'] or 0) >= 2 for r in twins)})."]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20, help="leaks per video")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--video-seconds", type=int, default=150)
    ap.add_argument("--videos", default=",".join(VIDEOS))
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench-goal")
    ap.add_argument("--prepare-only", action="store_true", help="make and process the videos, trace nothing")
    a = ap.parse_args()
    started = time.monotonic()
    b = Bench(a)
    wanted = a.videos.split(",")
    videos = {}
    for v in VIDEOS:                      # every video is in the catalogue, traced or not
        videos[v] = b.processed(v)
        log(f"{v}: processed ({videos[v]['n']} segments)")
    if a.prepare_only:
        return 0
    b.catalogue()
    rows: list[dict] = []
    for k in range(a.trials):             # round-robin: a cut-short run covers every video
        for v in wanted:
            r = b.trial(v, k)
            rows.append(r)
            log(f"{v} #{k}: {r['verdict']}, identified {r['identified']}, innocents {len(r['innocents_accused'])}, "
                f"{r['trace_seconds']} s")
            write(a, rows, videos, False, started)
    write(a, rows, videos, True, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
