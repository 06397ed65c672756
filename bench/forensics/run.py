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
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.support.contract_client import ContractClient  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# The detector version a trial ran against (the stack runs this checkout): a resumed run
# can mix versions, and the report says which figures came from which.
CODE = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                      text=True).stdout.strip() or "unknown"
CONTENT = {    # lavfi sources: different motion, texture and brightness
    "pattern": "testsrc2=size=1280x720:rate=30",
    "texture": "cellauto=s=1280x720:rate=30:rule=110:random_fill_ratio=0.5,scale=1280:720,boxblur=2",
    # A night sky: two dark blue-greys (luma ~11-54) slowly turning, with film grain on luma.
    # nb_colors=2 matters: gradients' default mixes in bright random colours.
    "dark": ("gradients=s=1280x720:rate=30:speed=0.02:c0=0x101018:c1=0x283040:nb_colors=2,"
             "format=yuv420p,noise=c0s=6:c0f=t"),
}
ATTACKS = {    # name -> (ffmpeg -vf, crf, window start fraction, window seconds)
    "crf23": ("null", 23, None, None),
    "crf28": ("null", 28, None, None),
    "crf32": ("null", 32, None, None),
    "480p": ("scale=-2:480", 23, None, None),
    "360p": ("scale=-2:360", 23, None, None),
    "fps25": ("fps=25", 23, None, None),
    "crop5": ("crop=iw*0.95:ih*0.95", 23, None, None),
    "win120": ("null", 23, 0.4, 120),
    "win60": ("null", 23, 0.4, 60),
    "win120_480p_crf28": ("scale=-2:480", 28, 0.35, 120),
    "win60_360p_fps25_crf28": ("fps=25,scale=-2:360", 28, 0.5, 60),
    "crop5_480p_crf28": ("crop=iw*0.95:ih*0.95,scale=-2:480", 28, None, None),
}


GOAL_ATTACK = "win120_480p_crf28"


def sh(argv):
    subprocess.run(argv, check=True, capture_output=True)


def make_video(kind: str, minutes: float, dest: Path) -> Path:
    sh(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", CONTENT[kind], "-t", str(minutes * 60),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", str(dest)])
    return dest


def window_start(name: str, duration: float, trial: int = 0) -> float | None:
    """Where the attack's window starts: at its listed fraction on trial 0, anywhere in the
    video on later trials (seeded, so a rerun attacks the same windows)."""
    _, _, start, window = ATTACKS[name]
    if start is None:
        return None
    if trial and window:
        return random.Random(f"{name}:{trial}").uniform(0, max(0.0, duration - window - 2))
    return duration * start


def attack(src: Path, dest: Path, name: str, duration: float, trial: int = 0) -> Path:
    vf, crf, _, window = ATTACKS[name]
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    at = window_start(name, duration, trial)
    if at is not None:
        argv += ["-ss", f"{at:.2f}"]
    argv += ["-i", str(src)]
    if window:
        argv += ["-t", str(window)]
    sh(argv + ["-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-an", str(dest)])
    return dest


class Admin:
    """The admin's API calls; logs in again when the 5-minute access token expires."""

    def __init__(self, gw: str, password: str):
        self.gw, self.password = gw, password
        self._login()

    def _login(self) -> None:
        r = requests.post(f"{self.gw}/api/auth/login", json={"username": "admin", "password": self.password})
        r.raise_for_status()
        self.h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def req(self, method: str, path: str, **kw) -> requests.Response:
        for _ in range(2):
            for f in kw.get("files", {}).values():   # a retried upload must resend the file
                f[1].seek(0)
            r = requests.request(method, self.gw + path, headers=self.h, timeout=600, **kw)
            if r.status_code != 401:
                return r
            self._login()
        return r

    def upload(self, path: Path, title: str) -> str:
        mine = self.req("GET", "/api/videos/mine").json().get("items", [])
        reuse = next((v["id"] for v in mine if v["title"] == title and v["status"] in ("queued", "processing", "ready")), None)
        if reuse:
            vid = reuse
        else:
            with open(path, "rb") as fh:
                r = self.req("POST", "/api/videos", files={"file": (path.name, fh, "video/mp4")},
                             data={"title": title, "visibility": "public"})
            r.raise_for_status()
            vid = r.json()["video"]["id"]
        while True:
            r = self.req("GET", f"/api/videos/{vid}")
            r.raise_for_status()
            v = r.json()
            status = v.get("status") or v.get("video", {}).get("status")
            if status == "ready":
                return vid
            if status == "failed":
                raise RuntimeError(f"processing failed: {v}")
            time.sleep(3)

    def detect(self, path: Path, video_id: str | None = None) -> tuple[dict, float]:
        t0 = time.monotonic()
        with open(path, "rb") as fh:
            r = self.req("POST", "/api/forensics/detect", files={"file": (path.name, fh)},
                         data={"video_id": video_id} if video_id else {})
        r.raise_for_status()
        job = r.json()["job_id"]
        while True:
            r = self.req("GET", f"/api/forensics/detect/{job}")
            r.raise_for_status()
            body = r.json()
            if body["status"] in ("done", "failed"):
                break
            time.sleep(1)
        elapsed = time.monotonic() - t0
        full = self.req("GET", f"/api/forensics/detect/{job}/report.json")
        return (full.json() if full.ok else body), elapsed


def open_sessions(gw: str, video_id: str, n: int, viewers: int = 10) -> list[tuple[ContractClient, str]]:
    clients = []
    for _ in range(viewers):
        name = f"bench_{uuid.uuid4().hex[:8]}"
        pw = "bench password " + name
        requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@b.test", "password": pw})
        clients.append(ContractClient(gw).login(name, pw))
    out = []
    for i in range(n):
        c = clients[i % viewers]
        s = c.open_session(video_id)
        c.end(s)
        out.append((c, s.id))
    return out


def leak_stream(gw: str, video_id: str, dest: Path) -> tuple[str, Path]:
    """A fresh session of a fresh viewer, fully downloaded and decrypted (top rung)."""
    name = f"leaker_{uuid.uuid4().hex[:8]}"
    pw = "bench password " + name
    requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@b.test", "password": pw})
    c = ContractClient(gw).login(name, pw)
    s = c.open_session(video_id)
    top = max((r for r in c.representations(s) if r.kind == "video"), key=lambda r: r.height or 0)
    c.download(s, top.id, dest)
    c.end(s)
    return s.id, dest


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


def earlier_run(admin: "Admin", kinds: str) -> tuple[dict, dict, list]:
    """The recorded run, its videos (by title: processed, sessions open) and its controls."""
    data = json.loads((RESULTS / "forensics.json").read_text())
    mine = {v["title"]: v["id"] for v in admin.req("GET", "/api/videos/mine").json().get("items", [])}
    videos = {kind: (mine[f"bench {kind}"], None) for kind in kinds.split(",")}
    return data, videos, data["controls"]


def report(a, rows: dict, controls: list, trial_log: list, final: bool = False) -> str:
    """Write bench/results/forensics.{json,md}; called after every trial so a cut run keeps its data."""
    out = {"complete": final, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
           "cpus": os.cpu_count(), "load": os.getloadavg(), "minutes": a.minutes, "sessions": a.sessions,
           "trials_per_attack_per_video": a.trials, "videos": list(CONTENT) if a.videos == ",".join(CONTENT) else a.videos,
           "goal_attack": GOAL_ATTACK, "goal_trials_per_video": a.goal_trials,
           "attacks": rows, "controls": controls, "trials": trial_log}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "forensics.json").write_text(json.dumps(out, indent=2))
    lines = ["| attack | trials | identified | false accusations | min abs z | trace time median / max (s) |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        times = sorted(r["times"])
        lines.append(f"| {name} | {r['trials']} | {100 * r['identified'] / r['trials']:.0f}% | {r['false']} | "
                     f"{r['min_z']} | {times[len(times) // 2]} / {times[-1]} |")
    false_controls = sum(1 for c in controls if c["false"])
    per_video = {}
    for t in trial_log:
        v = per_video.setdefault(t["video"], [0, 0])
        v[0] += 1
        v[1] += t["identified"]
    lines.append("\nPer video: " + ", ".join(f"{k} {v[1]}/{v[0]} identified" for k, v in per_video.items()) + ".")
    by_version: dict = {}
    for t in trial_log:
        by_version.setdefault(t["attack"], {}).setdefault(t.get("code", "unlabelled"), []).append(t)
    for name, versions in by_version.items():
        if len(versions) > 1:     # a resumed run against newer code: say which figures are whose
            lines.append(f"\n{name} by detector version: " + "; ".join(
                f"{code}: {sum(t['identified'] for t in ts)}/{len(ts)} identified, "
                f"{sum(t['false'] for t in ts)} false, trace median {sorted(t['seconds'] for t in ts)[len(ts) // 2]} s, "
                f"{len({t.get('window_start') for t in ts})} window start(s)" for code, ts in versions.items()) + ".")
    lines.append(f"\nControls (unmarked copies, leaks traced as another video): {len(controls)}, "
                 f"false accusations: {false_controls}. Load average during run: {out['load']}.")
    setup = (f"{a.minutes:g}-minute 720p videos ({', '.join(out['videos']) if isinstance(out['videos'], list) else out['videos']}), "
             f"{a.sessions} sessions each opened through the streaming API with the contract client; each trial "
             f"leaks a fresh session's decrypted top rung, attacks it and submits it to POST /api/forensics/detect "
             f"(no video_id). {GOAL_ATTACK}: {a.goal_trials} leaks per video; other attacks: see the trials column. "
             f"Trace time = submit to done, on a shared 2-core machine.\n\n")
    head = "# Forensics benchmark\n\n" + ("" if final else "**Partial: the run was still going (or was cut short).**\n\n") + setup
    (RESULTS / "forensics.md").write_text(head + "\n".join(lines) + "\n")
    return "\n".join(lines)


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
