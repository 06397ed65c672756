"""Forensics at catalogue scale (issue 19, item 1): is a leak traced to the right session
among >= 1000 sessions per video and >= 100 catalogue videos, in < 60 s, with a catalogue
search that does not grow linearly with the catalogue?

Against a running stack (`SV_TEST_STACK=fx SV_TEST_OFFSET=52000 python -m stack up --stack fx`,
or --gateway/--admin-password). The bench signs up its viewers from one address: start that
stack with SIGNUP_MAX_PER_IP=1000 in the environment (10 per hour by default), as README's
benchmark table says:
  1. catalogue: renders --distractors short lavfi videos of different content
     (scale_content.py) and --traced long ones, plus a byte-identical re-upload of the first
     traced video (a near-duplicate: both must come back as candidates, the watermark
     decides), uploads them all with POST /api/videos and waits until processed;
  2. sessions: opens --sessions sessions per traced video through POST /api/stream/sessions
     (download-purpose sessions: keyed codeword, no stream slot, nothing streamed);
  3. leaks: per traced video, one more session of a fresh viewer, streamed and decrypted
     (the leaker), attacked with each of --attacks (attacks.py) and submitted to
     POST /api/forensics/detect; the stack's worker runs the real trace;
  4. identification vs catalogue size, in process: the suspect's index lookup against
     index tables of growing size (the real catalogue's signatures, then synthetic
     videos' up to --synthetic-hours), next to the exhaustive fingerprint scan it replaced.
Every stage records into bench/results/forensics-scale.json as it goes; a rerun resumes
(videos by title, sessions by count, traces by (video, attack)).

Smoke (CI): tests/test_forensics_scale.py runs stage 4 offline on a few clips.

Usage: python bench/forensics/scale.py [--distractors 100] [--traced pattern,texture,dark]
       [--sessions 1000] [--attacks goal_crop5_360p_fps25_crf30,win120_480p_crf32]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
for pkg in ("common", "watermark-svc"):                       # svcommon, watermark_svc (stage 4)
    sys.path.insert(0, str(ROOT / pkg))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from attacks import attack  # noqa: E402
from scale_content import distractors, render, traced  # noqa: E402
from scale_report import RESULTS_JSON, write_report  # noqa: E402
from scale_stack import open_download_sessions, upload_all, wait_ready  # noqa: E402
from stack_api import Admin, leak_stream  # noqa: E402

DUPLICATE_SUFFIX = "-copy"


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def load_state() -> dict:
    if RESULTS_JSON.exists():
        return json.loads(RESULTS_JSON.read_text())
    return {"videos": {}, "sessions": {}, "leaks": {}, "traces": [], "identification_scaling": None}


def save(state: dict, a) -> None:
    write_report(state, a)


def stage_catalogue(a, admin: Admin, state: dict, clips: Path) -> None:
    files = {}
    for c in distractors(a.distractors, a.distractor_seconds) + traced(a.traced.split(","), a.traced_seconds):
        files[f"scale {c.name}"] = render(c, clips / f"{c.name}.mp4")
    first = a.traced.split(",")[0]
    files[f"scale t-{first}{DUPLICATE_SUFFIX}"] = files[f"scale t-{first}"]     # the same file uploaded twice
    state["videos"] = upload_all(admin, files, state["videos"], log)
    save(state, a)
    wait_ready(admin, state["videos"], log)
    state["catalogue_ready"] = True
    save(state, a)


def stage_sessions(a, state: dict) -> None:
    for kind in a.traced.split(","):
        vid = state["videos"][f"scale t-{kind}"]
        have = state["sessions"].get(vid, 0)
        if have < a.sessions:
            t0 = time.monotonic()
            open_download_sessions(a.gateway, vid, a.sessions - have, log=log)
            state["sessions"][vid] = a.sessions
            state.setdefault("session_open_seconds", {})[vid] = round(time.monotonic() - t0, 1)
            save(state, a)


def stage_traces(a, admin: Admin, state: dict, clips: Path, tmp: Path) -> None:
    for kind in a.traced.split(","):
        vid = state["videos"][f"scale t-{kind}"]
        if vid not in state["leaks"]:
            sid, path = leak_stream(a.gateway, vid, clips / f"leak-{kind}.mp4")
            state["leaks"][vid] = {"session": sid, "path": str(path)}
            save(state, a)
        leak = state["leaks"][vid]
        for name in a.attacks.split(","):
            if any(t["video_id"] == vid and t["attack"] == name for t in state["traces"]):
                continue
            copy = attack(Path(leak["path"]), tmp / f"{kind}-{name}.mp4", name, a.traced_seconds)
            res, elapsed = admin.detect(copy)
            ev = res.get("evidence") or res.get("result") or {}
            match = (ev.get("match") or {}).get("session_id")
            row = {"kind": kind, "video_id": vid, "attack": name, "leaker": leak["session"],
                   "verdict": ev.get("verdict"), "matched": match, "right": match == leak["session"],
                   "false_accusation": bool(match) and match != leak["session"],
                   "identified_video": ev.get("video_id"), "sessions_tested": ev.get("sessions_tested"),
                   "candidates": [c["video_id"] for c in ev.get("candidates") or []],
                   "index": ev.get("index"), "timings": ev.get("timings"),
                   "trace_seconds": ev.get("elapsed_seconds"), "submit_to_done_seconds": round(elapsed, 1)}
            state["traces"].append(row)
            log(f"{kind} {name}: {row['verdict']} right={row['right']} {row['submit_to_done_seconds']} s")
            save(state, a)


def stage_scaling(a, state: dict, clips: Path, tmp: Path) -> None:
    from scale_identify import identification_scaling
    leaks = {k: Path(state["leaks"][state["videos"][f"scale t-{k}"]]["path"]) for k in a.traced.split(",")
             if state["videos"].get(f"scale t-{k}") in state["leaks"]}
    sources = sorted(clips.glob("d*.mp4"))[:a.distractors] + [clips / f"t-{k}.mp4" for k in a.traced.split(",")]
    state["identification_scaling"] = identification_scaling(sources, leaks, tmp, a.synthetic_hours,
                                                              a.traced_seconds, log=log)
    save(state, a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=f"http://127.0.0.1:{8080 + int(os.environ.get('SV_TEST_OFFSET', '52000'))}")
    ap.add_argument("--admin-password", default=None, help="default: the fx stack's secrets.env")
    ap.add_argument("--distractors", type=int, default=100)
    ap.add_argument("--distractor-seconds", type=float, default=24.0)
    ap.add_argument("--traced", default="pattern,texture,dark")
    ap.add_argument("--traced-seconds", type=float, default=150.0)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--attacks", default="goal_crop5_360p_fps25_crf30,win120_480p_crf32")
    ap.add_argument("--synthetic-hours", type=float, default=100.0)
    ap.add_argument("--stages", default="catalogue,sessions,traces,scaling")
    ap.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "sv-forensics-scale")
    a = ap.parse_args()
    a.clips.mkdir(parents=True, exist_ok=True)
    pw = a.admin_password or _stack_admin_password()
    state = load_state()
    stages = a.stages.split(",")
    with tempfile.TemporaryDirectory(prefix="sv-scale-") as tmp:
        admin = Admin(a.gateway, pw) if set(stages) - {"scaling"} else None
        if "catalogue" in stages:
            stage_catalogue(a, admin, state, a.clips)
        if "sessions" in stages:
            stage_sessions(a, state)
        if "traces" in stages:
            stage_traces(a, admin, state, a.clips, Path(tmp))
        if "scaling" in stages:
            stage_scaling(a, state, a.clips, Path(tmp))
    # Complete when every stage has run to its end, in this run or an earlier one.
    state["complete"] = bool(state.get("catalogue_ready") and state["sessions"] and state.get("identification_scaling")
                             and len(state["traces"]) >= len(a.traced.split(",")) * len(a.attacks.split(",")))
    save(state, a)
    return 0


def _stack_admin_password() -> str:
    name = os.environ.get("SV_TEST_STACK", "fx")
    for line in (ROOT / "var" / name / "secrets.env").read_text().splitlines():
        if line.startswith("ADMIN_PASSWORD="):
            return line.split("=", 1)[1]
    raise SystemExit("no --admin-password and no ADMIN_PASSWORD in the stack's secrets.env")


if __name__ == "__main__":
    sys.exit(main())
