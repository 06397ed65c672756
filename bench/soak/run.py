"""Soak (issue #18 item 6): the mixed workload of the reliability suite (viewers playing and
renewing, uploads by POST and by tus, their processing, a forensic trace every few minutes)
for ``--minutes`` against a stack started as `make up` starts it (supervised), while every
program's memory (RSS of its whole process group), open file descriptors and the database's
connections are sampled. Reports errors (must be 0), the trend of each series over the run
(least-squares slope, after a warm-up) and p50/p99 per route from the gateway's access log.

The anchor, measured in the same run: each figure of the last minute against the first
minute after the warm-up (memory, descriptors, connections, route latencies); a flat service
stays near 1.0x.

Usage: .venv/bin/python bench/soak/run.py [--minutes 10] [--viewers 4] [--upload-every 20]
Starts its own stack (var/bench-soak, ports +9000) and stops it afterwards.
Writes bench/results/soak.json and bench/results/soak.md."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import mysql.connector
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stack.layout import Stack  # noqa: E402
from stack.secrets import load_or_create  # noqa: E402
from stack.supervision import group_members  # noqa: E402
from tests.support.media import ONE_RUNG, make_clip  # noqa: E402
from tests.support.supervised import PROGRAMS, SupervisedStack, wait_until  # noqa: E402
from tests.support.videos import register_user  # noqa: E402
from tests.support.workload import Uploader, Viewer  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402

STACK = Stack("bench-soak", 9000)
TUNING = {"X264_PRESET": "ultrafast", "SIGNUP_MAX_PER_IP": "100000", "LOGIN_MAX_FAILURES_IP": "100000",
          "PASSWORD_CHECKS_PER_MINUTE": "100000", "LOG_LEVEL": "WARNING"}
SAMPLE_EVERY = 10          # seconds
WARMUP = 60                # seconds excluded from trends and anchors
RESULTS = ROOT / "bench" / "results"


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY s: per program, RSS (MB) and open descriptors of its process group
    (supervisord starts each program in a group of its own); the database's connections."""

    def __init__(self, sup: SupervisedStack, secrets: dict) -> None:
        super().__init__(daemon=True)
        self.sup, self.secrets = sup, secrets
        self.stop = threading.Event()
        self.rows: list[dict] = []
        self.restarts: dict[str, set[int]] = {p: set() for p in PROGRAMS}

    def run(self) -> None:
        conn = mysql.connector.connect(host="127.0.0.1", port=STACK.mariadb_port, user="streamvault",
                                       password=self.secrets["DB_PASSWORD"], database="streamvault", autocommit=True)
        started = time.monotonic()
        while not self.stop.wait(0 if not self.rows else SAMPLE_EVERY):
            row = {"t": round(time.monotonic() - started, 1)}
            for program in PROGRAMS:
                pid = self.sup.pid_of(program)
                self.restarts[program].add(pid)
                members = group_members(pid) if pid else []
                row[f"{program}.rss_mb"] = round(sum(_status_kb(p, "VmRSS") for p in members) / 1024, 1)
                row[f"{program}.fds"] = sum(_fds(p) for p in members)
            cur = conn.cursor()
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            row["db.connections"] = int(cur.fetchone()[1])
            cur.close()
            self.rows.append(row)
        conn.close()


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) in value per minute."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


_ID = re.compile(r"(?<=[/-])[0-9a-f]{32}(?=[./]|$)|(?<=/)[A-Za-z0-9_-]{40,}|(?<=/)\d+(?=[./-]|$)")


def route_of(method: str, uri: str) -> str:
    """A route name from a logged URI: ids and tokens as {id}, query dropped."""
    return f"{method} " + _ID.sub("{id}", uri.split("?", 1)[0])


def latencies(log: Path, since: float) -> dict[str, list[float]]:
    """Request times (ms) per route from the gateway's JSON access log (its "seconds" field:
    nginx's $request_time), for requests logged at or after ``since`` (epoch s)."""
    out: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        when = datetime.fromisoformat(rec["ts"]).timestamp()
        if when >= since:
            out.setdefault(route_of(rec["method"], rec["uri"]), []).append(float(rec["seconds"]) * 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--viewers", type=int, default=4)
    ap.add_argument("--upload-every", type=float, default=20, help="seconds between uploads")
    ap.add_argument("--trace-every", type=float, default=300, help="seconds between forensic traces")
    args = ap.parse_args()
    sup = SupervisedStack(STACK, TUNING)
    errors: list[str] = []
    try:
        sup.start()
        gw = STACK.gateway_url
        secrets = load_or_create(STACK.var / "secrets.env")
        owner = register_user(gw, "soak")
        clip = make_clip(Path(tempfile.mkdtemp()) / "clip.mp4", seconds=4, size=ONE_RUNG).read_bytes()
        first = Uploader(gw, owner["username"], owner["password"]).post(clip, "soak: played", visibility="public")
        video = first.video_id
        auth = {"Authorization": f"Bearer {owner['access_token']}"}
        wait_until(lambda: requests.get(f"{gw}/api/library/{video}", headers=auth, timeout=10).json().get("status")
                   == "ready", 300, "first video ready", step=1)
        sampler = Sampler(sup, secrets)
        sampler.start()
        started_wall, started = time.time(), time.monotonic()
        # An account each: one account may stream on 3 devices at once (MAX_CONCURRENT_STREAMS);
        # a fourth viewer of one account is refused (429 stream_limit), by design.
        accounts = [register_user(gw, f"soakv{i}") for i in range(args.viewers)]
        viewers = [Viewer(gw, a["username"], a["password"], video) for a in accounts]
        for v in viewers:
            v.start()
        uploads, traces, n = [], [], 0
        admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": secrets["ADMIN_PASSWORD"]},
                              timeout=15).json()["access_token"]
        next_upload, next_trace = started, started + 30
        while time.monotonic() - started < args.minutes * 60:
            now = time.monotonic()
            if now >= next_upload:
                up = Uploader(gw, owner["username"], owner["password"])
                try:
                    o = up.tus(clip, f"soak {n}") if n % 2 else up.post(clip, f"soak {n}")
                    uploads.append(o)
                    errors += [f"upload {n}: {e}" for e in o.errors]
                except Exception as exc:  # noqa: BLE001 - an error of the run
                    errors.append(f"upload {n}: {exc!r}"[:300])
                n += 1
                next_upload = now + args.upload_every
            if now >= next_trace:
                with open(ROOT / "var" / "bench-soak-leak.mp4", "wb") as f:
                    f.write(clip)          # an unmarked copy: traced to no one, the whole pipeline runs
                with open(ROOT / "var" / "bench-soak-leak.mp4", "rb") as f:
                    r = requests.post(f"{gw}/api/forensics/detect", files={"file": ("leak.mp4", f, "video/mp4")},
                                      data={"video_id": video}, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
                if r.status_code == 401:
                    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password":
                                          secrets["ADMIN_PASSWORD"]}, timeout=15).json()["access_token"]
                elif r.status_code != 202:
                    errors.append(f"trace: {r.status_code} {r.text[:200]}")
                else:
                    traces.append(r.json()["job_id"])
                next_trace = now + args.trace_every
            time.sleep(0.5)
        for v in viewers:
            v.stop.set()
        for v in viewers:
            v.join(30)
            errors += [f"viewer: {e}" for e in v.errors]
        sampler.stop.set()
        sampler.join(30)
        elapsed = time.monotonic() - started
        routes = latencies(STACK.var / "nginx" / "logs" / "access.log", started_wall)
        segments = sum(v.segments for v in viewers)
    finally:
        sup.stop()

    rows = sampler.rows
    series = [k for k in rows[0] if k != "t"]
    first_min = [r for r in rows if WARMUP <= r["t"] < WARMUP + 60]
    last_min = [r for r in rows if r["t"] >= rows[-1]["t"] - 60]
    trends = {}
    # A leak keeps growing; a cache or pool warming up levels off. So besides the whole run's
    # slope, the second half's: the minute at the half-way point against the last minute.
    half = WARMUP + (rows[-1]["t"] - WARMUP) / 2
    mid_min = [r for r in rows if half - 30 <= r["t"] < half + 30]
    for k in series:
        pts = [(r["t"], r[k]) for r in rows if r["t"] >= WARMUP]
        anchor = statistics.fmean(r[k] for r in first_min) if first_min else 0.0
        last = statistics.fmean(r[k] for r in last_min) if last_min else 0.0
        mid = statistics.fmean(r[k] for r in mid_min) if mid_min else 0.0
        trends[k] = {"slope_per_min": round(slope_per_minute(pts), 3), "first_min": round(anchor, 1),
                     "last_min": round(last, 1), "ratio": round(last / anchor, 3) if anchor else None,
                     "half_way_min": round(mid, 1), "second_half_ratio": round(last / mid, 3) if mid else None,
                     "second_half_slope_per_min": round(slope_per_minute([p for p in pts if p[0] >= half]), 3)}
    route_table = {name: {"n": len(xs), "p50_ms": round(pct(xs, 0.5), 1), "p99_ms": round(pct(xs, 0.99), 1)}
                   for name, xs in sorted(routes.items(), key=lambda kv: -len(kv[1])) if len(xs) >= 5}
    restarts = {p: max(0, len(pids - {0}) - 1) for p, pids in sampler.restarts.items()}
    result = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
              "cpus": os.cpu_count(), "minutes": round(elapsed / 60, 1), "viewers": args.viewers,
              "uploads": len(uploads), "traces_submitted": len(traces), "segments_played": segments,
              "errors": errors, "restarts": restarts, "trends": trends, "routes": route_table, "samples": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Soak ({result['minutes']} min, {args.viewers} viewers, an upload every {args.upload_every:.0f} s, "
             f"a trace every {args.trace_every:.0f} s; {result['when']}, {result['cpus']} cores)", "",
             f"Errors: **{len(errors)}**; uploads {len(uploads)}, traces {len(traces)}, segments played {segments}; "
             f"process restarts: {sum(restarts.values())}.", "",
             "Anchor: the first minute after a 60-s warm-up; ratio = last minute / anchor (flat ≈ 1.0x). "
             "Second half: the last minute against the minute half-way through, and the slope over the "
             "second half (a leak keeps its slope; a warming cache or pool levels off).", "",
             "| series | first minute | half-way | last minute | ratio | slope per minute | second-half ratio "
             "| second-half slope |", "|---|---|---|---|---|---|---|---|"]
    for k, t in trends.items():
        lines.append(f"| {k} | {t['first_min']} | {t['half_way_min']} | {t['last_min']} | {t['ratio']}x "
                     f"| {t['slope_per_min']} | {t['second_half_ratio']}x | {t['second_half_slope_per_min']} |")
    lines += ["", "Reading it: `db.connections` is a high-water mark, not a leak: each process's pool "
              "(svcommon.db.Pool) opens a connection only when every open one is busy and keeps it, at most "
              "`DB_POOL_SIZE` per process, so the count steps up with the most concurrent requests seen "
              "and never comes down. A leak keeps its slope in the second half; a cache or pool that is "
              "warming up levels off (SeaweedFS's memory, in the runs so far)."]
    lines += ["", "| route (gateway) | requests | p50 ms | p99 ms |", "|---|---|---|---|"]
    for name, t in route_table.items():
        lines.append(f"| `{name}` | {t['n']} | {t['p50_ms']} | {t['p99_ms']} |")
    if errors:
        lines += ["", "First errors:", ""] + [f"- {e}" for e in errors[:20]]
    write_markdown(RESULTS / "soak.md", "\n".join(lines) + "\n")
    print("\n".join(lines[:4]))
    mem = {k: t["ratio"] for k, t in trends.items() if k.endswith(".rss_mb")}
    print("memory last minute / first minute: " + ", ".join(f"{k.split('.')[0]} {v}x" for k, v in mem.items()))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
