"""Forensics robustness benchmark (issue 6): does a leaked, attacked copy lead back to
the right playback session, and never to an innocent one?

Against a running stack (`make up`, or --gateway/--admin-password for another): 
  1. generates >= 3-minute videos with different content (moving test pattern, evolving
     noise-like texture, a dark low-contrast scene), uploads them with POST /api/videos
     and waits until processed;
  2. opens --sessions sessions per video through the real streaming API with the
     contract client (tests/support/contract_client.py; several viewers, each session
     ended after opening, as the concurrent-stream limit wants), and for each trial
     downloads one random session's decrypted 720p/480p stream as a leaker would;
  3. applies each attack with ffmpeg and submits the copy to POST /api/forensics/detect,
     polling GET /api/forensics/detect/{id} (the workers of the stack do the work);
  4. controls: an unmarked copy (the original, re-encoded) must give no match, and each
     video's leak, attacked (so no session tag is left) and traced as another video
     (video_id of another video), must accuse nobody. A match counts as a false
     accusation unless it names the leaker's own session (an intact tag may, rightly).
Per attack: identification rate, false accusations, minimum |z| (from report.json),
time to trace (submit -> done). Writes bench/results/forensics.json and forensics.md.

The goal attack (a 120-s window at 480p/CRF 28) gets --goal-trials leaks per video, the
others --trials: the identification rate the product is judged by needs many trials,
the rest of the table shows where the limits are.

Usage: python bench/forensics/run.py [--minutes 3] [--sessions 200] [--trials 1] [--goal-trials 8]
       python bench/forensics/run.py --resume [--attacks a,b,...]   # continue a cut run
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))                                # tests.support.contract_client
sys.path.insert(0, str(Path(__file__).resolve().parent))     # this benchmark's modules
from attacks import ATTACKS, CONTENT, GOAL_ATTACK, attack, make_video, window_start  # noqa: E402
from results import CODE, earlier_run, report  # noqa: E402
from stack_api import Admin, leak_stream, open_sessions  # noqa: E402


def control(kind: str, what: str, res: dict, leaker: str | None) -> dict:
    match = (res.get("evidence") or {}).get("match") or None
    sid = match.get("session_id") if match else None
    return {"video": kind, "control": what, "matched_session": sid, "leaker_session": leaker,
            "method": (res.get("evidence") or {}).get("method_used"), "false": bool(sid) and sid != leaker}


def cross_controls(a, admin: "Admin", tmp: Path, videos: dict, controls: list) -> None:
    """The unmarked original re-encoded; a leak of each video (attacked: no tag left) traced
    as the next video. Controls already in `controls` are not run again."""
    have = {(c["video"], c["control"]) for c in controls}
    kinds = list(videos)
    for i, kind in enumerate(kinds):
        vid, src = videos[kind]
        if (kind, "unmarked") not in have:
            src = src or make_video(kind, a.minutes, tmp / f"{kind}.mp4")
            unmarked = attack(src, tmp / f"{kind}-unmarked.mp4", "480p", a.minutes * 60)
            res, _ = admin.detect(unmarked)
            controls.append(control(kind, "unmarked", res, None))
        if len(kinds) > 1 and (kind, "traced as another video") not in have:
            other = videos[kinds[(i + 1) % len(kinds)]][0]
            sid, stream = leak_stream(a.gateway, vid, tmp / f"{kind}-cross-stream.mp4")
            leak = attack(stream, tmp / f"{kind}-cross.mp4", GOAL_ATTACK, a.minutes * 60)
            res, _ = admin.detect(leak, video_id=other)
            controls.append(control(kind, "traced as another video", res, sid))
        print(f"[bench] controls {kind}: {controls[-2:]}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default=os.environ.get("SV_GATEWAY", "http://127.0.0.1:8080"))
    ap.add_argument("--admin-password", default=None)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--trials", type=int, default=1, help="leaks per attack per video")
    ap.add_argument("--goal-trials", type=int, default=8, help=f"leaks per video for {GOAL_ATTACK}")
    ap.add_argument("--videos", default=",".join(CONTENT))
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--resume", action="store_true",
                    help="continue the run in bench/results/forensics.json: its videos (sessions already "
                         "open), only the trials and controls it lacks, in --attacks order")
    a = ap.parse_args()
    password = a.admin_password
    if password is None:
        env = dict(l.split("=", 1) for l in (ROOT / "var/dev/secrets.env").read_text().split() if "=" in l)
        password = env["ADMIN_PASSWORD"]
    admin = Admin(a.gateway, password)
    rows, controls, trial_log = {}, [], []
    if a.resume:
        data, videos, controls = earlier_run(admin, a.videos)
        rows, trial_log = data["attacks"], data.get("trials", [])
    done = Counter((t["video"], t["attack"]) for t in trial_log)
    with tempfile.TemporaryDirectory(prefix="sv-bench-forensics-") as tmp:
        tmp = Path(tmp)

        def trial(kind: str, vid: str, name: str, t: int) -> None:
            sid, stream = leak_stream(a.gateway, vid, tmp / f"{kind}-{name}-{t}-stream.mp4")
            leak = attack(stream, tmp / f"{kind}-{name}-{t}.mp4", name, a.minutes * 60, t)
            res, secs = admin.detect(leak)
            ev = res.get("evidence", {})
            robust = ev.get("robust") or {}
            accused = {x["session_id"] for x in robust.get("accused", [])} | (
                {ev["match"]["session_id"]} if ev.get("match") else set())
            row = rows.setdefault(name, {"trials": 0, "identified": 0, "false": 0, "min_z": None, "times": []})
            row["trials"] += 1
            row["identified"] += sid in accused
            row["false"] += len(accused - {sid})
            mz = robust.get("min_abs_z")
            if mz is not None:
                row["min_z"] = mz if row["min_z"] is None else min(row["min_z"], mz)
            row["times"].append(round(secs, 1))
            print(f"[bench] {kind} {name}: identified={sid in accused} false={len(accused - {sid})} "
                  f"min_z={mz} {secs:.1f}s", flush=True)
            at = window_start(name, a.minutes * 60, t)
            trial_log.append({"video": kind, "attack": name, "code": CODE, "session": sid,
                              "window_start": None if at is None else round(at, 2), "identified": sid in accused,
                              "false": len(accused - {sid}), "min_abs_z": mz, "seconds": round(secs, 1),
                              "conclusion": ev.get("conclusion") or res.get("conclusion"),
                              "identification": (ev.get("identification") or [None])[0]})
            report(a, rows, controls, trial_log)
            for p in (stream, leak):
                p.unlink(missing_ok=True)

        # 1. The videos and their sessions. 2. The goal attack on every video, then the
        # controls: the figure the product is judged by comes first, so a cut run has it.
        # 3. Every other attack.
        videos = videos if a.resume else {}
        for kind in [] if a.resume else a.videos.split(","):
            src = make_video(kind, a.minutes, tmp / f"{kind}.mp4")
            vid = admin.upload(src, f"bench {kind}")
            print(f"[bench] {kind}: video {vid} ready; opening {a.sessions} sessions", flush=True)
            open_sessions(a.gateway, vid, a.sessions)
            videos[kind] = (vid, src)
        attacks = a.attacks.split(",")
        if GOAL_ATTACK in attacks:
            for kind, (vid, _) in videos.items():
                for t in range(done[(kind, GOAL_ATTACK)], a.goal_trials):
                    trial(kind, vid, GOAL_ATTACK, t)
        cross_controls(a, admin, tmp, videos, controls)
        report(a, rows, controls, trial_log)
        for name in attacks:
            if name == GOAL_ATTACK:
                continue
            for kind, (vid, _) in videos.items():
                for t in range(done[(kind, name)], a.trials):
                    trial(kind, vid, name, t)
    print(report(a, rows, controls, trial_log, final=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
