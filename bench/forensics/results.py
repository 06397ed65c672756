"""bench/results/forensics.{json,md}: written after every trial (so a cut run keeps its
data) and read back by --resume."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from attacks import CONTENT, GOAL_ATTACK

if TYPE_CHECKING:
    from stack_api import Admin

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))          # bench.reportfile
from bench.reportfile import write_markdown  # noqa: E402
RESULTS = ROOT / "bench" / "results"
# The detector version a trial ran against (the stack runs this checkout): a resumed run
# can mix versions, and the report says which figures came from which.
CODE = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                      text=True).stdout.strip() or "unknown"


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
    write_markdown(RESULTS / "forensics.md", head + "\n".join(lines) + "\n")
    return "\n".join(lines)
