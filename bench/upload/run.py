"""Upload benchmark (P3): a file through gateway → upload-svc → S3 (the parts PUT at URLs
file-svc signs; the plain streaming POST, tus in the web app's chunks, and the web app
itself in headless Chromium) versus boto3 multipart straight to the same S3, in the same
run on the same machine (each round runs every path, one after the other). Reports the
throughput ratios, CPU seconds per GiB of every program and the peak RSS of each service
(largest gunicorn worker, and master + workers). Times include upload-svc's check (probe)
of the finished upload.

Usage: .venv/bin/python bench/upload/run.py [--size-mib 2048] [--rounds 3] [--tus-chunk-mib N]
[--no-browser] (the default tus chunk is the web app's, TUS_CHUNK_SIZE).
Starts its own private stack (var/bench, ports +40000) and removes it afterwards.
Writes bench/results/upload.json and bench/results/upload.md."""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
from boto3.s3.transfer import TransferConfig

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "upload-svc"))

import ingest_helpers as h  # noqa: E402
from streamvault_cli.bodies import FileSlice  # noqa: E402
from stack import components, dbsetup  # noqa: E402
from stack.environment import for_service, gunicorn_command, stack_env  # noqa: E402
from stack.layout import SERVICES, Stack  # noqa: E402
from stack.secrets import load_or_create  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402

MiB = 1024 * 1024
BENCH = Stack("bench", 40000)


rss_mb, children = h.rss_mb, h.children
TICK = os.sysconf("SC_CLK_TCK")


def upload_setting(name: str):
    """An upload-svc setting as the bench's stack gets it: this environment, else the default
    (the one loader, svcommon.config)."""
    from svcommon.config import load
    from upload_svc.settings import SETTINGS
    return load([s for s in SETTINGS if s.name == name])[name]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (a gunicorn master's
    workers are alive, so they are counted one by one by ``group_cpu``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def group_cpu(procs: dict[str, subprocess.Popen]) -> dict[str, float]:
    """CPU seconds so far of each program (a gunicorn master plus its workers)."""
    return {n: cpu_seconds(p.pid) + sum(cpu_seconds(k) for k in children(p.pid)) for n, p in procs.items()}


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU seconds each program spent during one transfer ("client" is this process: the
    boto3 threads, or the HTTP client; the sampler thread's share is small)."""

    def __init__(self, procs):
        self.procs = {n: procs[n] for n in ("upload", "file", "gateway", "seaweed") if n in procs}

    def __enter__(self):
        self.t0, self.c0 = group_cpu(self.procs), self_cpu()
        return self

    def __exit__(self, *exc):
        t1 = group_cpu(self.procs)
        self.used = {n: round(t1[n] - self.t0[n], 2) for n in t1}
        self.used["client"] = round(self_cpu() - self.c0, 2)


class Sampler(threading.Thread):
    """Peak RSS per process group while a transfer runs."""

    def __init__(self, procs: dict[str, subprocess.Popen]):
        super().__init__(daemon=True)
        self.procs, self.stop = procs, threading.Event()
        self.worker_peak = {n: 0.0 for n in procs}
        self.total_peak = {n: 0.0 for n in procs}

    def run(self):
        while not self.stop.is_set():
            for name, proc in self.procs.items():
                kids = children(proc.pid)
                worker = max((rss_mb(k) for k in kids), default=0.0)
                total = rss_mb(proc.pid) + sum(rss_mb(k) for k in kids)
                self.worker_peak[name] = max(self.worker_peak[name], worker)
                self.total_peak[name] = max(self.total_peak[name], total)
            time.sleep(0.05)


class Stream:
    """A multipart/form-data body read from disk as it is sent (like curl -F file=@...)."""

    def __init__(self, path: Path, boundary: str):
        self.head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nbench\r\n"
                     f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.mp4\"\r\n"
                     "Content-Type: video/mp4\r\n\r\n").encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.size = path.stat().st_size
        self.f = open(path, "rb")
        self.stage = 0

    def __len__(self):
        return len(self.head) + self.size + len(self.tail)

    def read(self, n=-1):
        if self.stage == 0:
            self.stage = 1
            return self.head
        if self.stage == 1:
            chunk = self.f.read(n if n and n > 0 else MiB)
            if chunk:
                return chunk
            self.f.close()
            self.stage = 2
            return self.tail
        return b""


def start_stack(logdir: Path):
    if BENCH.var.exists():
        shutil.rmtree(BENCH.var)
    (BENCH.var / "logs").mkdir(parents=True)
    secrets = load_or_create(BENCH.var / "secrets.env")
    procs: dict[str, subprocess.Popen] = {}

    def start(name, argv, env=None):
        log = open(BENCH.var / "logs" / f"{name}.log", "ab")
        procs[name] = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    try:
        return _start_all(start, procs, secrets)
    except BaseException:
        stop_stack(procs)       # never leave a half-started stack running
        raise


def _start_all(start, procs: dict, secrets: dict):
    components.mariadb_prepare(BENCH)
    components.seaweed_prepare(BENCH, secrets)
    start("mariadb", components.mariadb_command(BENCH))
    start("seaweed", components.seaweed_command(BENCH))
    dbsetup.setup(BENCH, secrets["DB_PASSWORD"], out=lambda m: None)
    env = dict(stack_env(BENCH, secrets), LOG_LEVEL="WARNING")
    for _ in range(200):
        try:
            requests.get(BENCH.s3_endpoint, timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.3)
    for name in SERVICES:
        start(name, gunicorn_command(BENCH, name, sys.executable), for_service(name, env))
    for name in SERVICES:
        try:
            components.wait_http(f"{BENCH.url(name)}/healthz")
        except RuntimeError:
            log = (BENCH.var / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} did not come up; the end of its log:\n{log}") from None
    components.nginx_prepare(BENCH)
    start("gateway", components.nginx_command(BENCH))
    components.wait_http(f"{BENCH.gateway_url}/gateway/healthz")
    return procs, env


def stop_stack(procs: dict[str, subprocess.Popen]):
    for proc in reversed(list(procs.values())):
        components.stop_child(proc)


def direct(env: dict, path: Path) -> float:
    s3 = h.s3_client(env)
    try:
        s3.create_bucket(Bucket=env["S3_BUCKET"])
    except s3.exceptions.ClientError:
        pass
    except Exception:
        pass
    t0 = time.monotonic()
    s3.upload_file(str(path), env["S3_BUCKET"], "bench/direct.bin", Config=TransferConfig())
    elapsed = time.monotonic() - t0
    s3.delete_object(Bucket=env["S3_BUCKET"], Key="bench/direct.bin")
    return elapsed


def via_post(gw: str, user: dict, path: Path, procs) -> tuple[float, Sampler]:
    sampler = Sampler({n: procs[n] for n in ("upload", "file", "gateway")})
    sampler.start()
    t0 = time.monotonic()
    r = requests.post(f"{gw}/api/videos", data=Stream(path, "benchboundary"), timeout=1800, headers={
        **user["headers"], "Content-Type": "multipart/form-data; boundary=benchboundary"})
    elapsed = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    if r.status_code != 201:
        raise SystemExit(f"POST failed: {r.status_code} {r.text[:300]}")
    requests.delete(f"{gw}/api/videos/{r.json()['video']['id']}", headers=user["headers"], timeout=120)
    return elapsed, sampler


def via_tus(gw: str, user: dict, path: Path, procs, chunk: int) -> tuple[float, Sampler]:
    size = path.stat().st_size
    t = {**h.TUS, **user["headers"]}
    sampler = Sampler({n: procs[n] for n in ("upload", "file", "gateway")})
    sampler.start()
    t0 = time.monotonic()
    r = requests.post(f"{gw}/api/uploads", headers={**t, "Upload-Length": str(size),
                                                    "Upload-Metadata": h.tus_metadata(filename="bench.mp4")}, timeout=30)
    loc, offset = gw + r.headers["Location"], 0
    with requests.Session() as s, open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            # streamed from the file as it is sent (the CLI's body; the web app sends a Blob slice)
            body = FileSlice(f, min(chunk, size - offset), lambda n: None)
            r = s.patch(loc, data=body, headers={**t, "Upload-Offset": str(offset),
                                                 "Content-Type": "application/offset+octet-stream"}, timeout=600)
            if r.status_code != 204:
                raise SystemExit(f"PATCH failed: {r.status_code} {r.text[:300]}")
            offset = int(r.headers["Upload-Offset"])
    elapsed = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    requests.delete(f"{gw}/api/videos/{r.headers['X-Video-Id']}", headers=user["headers"], timeout=120)
    return elapsed, sampler


def descendants_cpu(exclude: set[int]) -> float:
    """CPU seconds so far of this process's descendants outside ``exclude`` and their trees:
    the playwright driver and Chromium's processes."""
    total, todo = 0.0, [k for k in children(os.getpid()) if k not in exclude]
    while todo:
        pid = todo.pop()
        total += cpu_seconds(pid)
        todo.extend(children(pid))
    return total


def via_browser(gw: str, user: dict, path: Path, procs, env: dict) -> tuple[float, Sampler, float]:
    """The web app's own upload in headless Chromium (tus-js-client with the page's settings):
    sign in, pick the file, time until the page shows the upload done. Returns the time, the
    RSS sampler and Chromium's CPU seconds."""
    from tests.support.browser import chromium_page
    from tests.support.page_checks import login
    stack_pids = {p.pid for p in procs.values()}
    with chromium_page() as page:
        login(page, gw, user, "/upload/")
        page.fill("#new-title", "bench")
        sampler = Sampler({n: procs[n] for n in ("upload", "file", "gateway")})
        sampler.start()
        c0 = descendants_cpu(stack_pids)
        t0 = time.monotonic()
        page.set_input_files("#file-input", str(path))
        state = None
        while state not in ("done", "failed", "cancelled"):
            time.sleep(0.05)     # page.evaluate: the page's CSP forbids wait_for_function's eval
            state = page.evaluate("document.querySelector('.transfer')?.dataset.state")
            if time.monotonic() - t0 > 1800:
                raise SystemExit("browser upload did not finish in 30 min")
        elapsed = time.monotonic() - t0
        browser_cpu = descendants_cpu(stack_pids) - c0
        sampler.stop.set()
        sampler.join()
    if state != "done":
        raise SystemExit(f"browser upload ended {state}")
    for row in h.db_rows(env, "SELECT id FROM videos WHERE owner_id = %s", (user["id"],)):
        requests.delete(f"{gw}/api/videos/{row['id']}", headers=user["headers"], timeout=120)
    return elapsed, sampler, browser_cpu


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tus-chunk-mib", type=int, default=0, help="tus PATCH size (default: the web app's)")
    ap.add_argument("--no-browser", action="store_true", help="skip the web app's upload in Chromium")
    args = ap.parse_args()
    chunk = args.tus_chunk_mib * MiB if args.tus_chunk_mib else upload_setting("TUS_CHUNK_SIZE")
    tmp = Path(tempfile.mkdtemp(prefix="sv-bench-"))
    procs = {}
    try:
        src = h.make_video(tmp / "src.mp4", seconds=2)
        path = h.pad_video(src, tmp / "bench.mp4", args.size_mib * MiB)
        procs, env = start_stack(tmp)
        gw = BENCH.gateway_url
        user = h.new_user(gw, "bench")
        size = path.stat().st_size
        runs = {"direct_boto3": [], "gateway_post": [], "gateway_tus": []}
        if not args.no_browser:
            runs["web_app_chromium"] = []
        peaks = {k: {} for k in ("post", "tus", "web_app")}
        cpu: dict[str, list[dict]] = {k: [] for k in runs}
        load = [round(x, 2) for x in os.getloadavg()]
        for i in range(args.rounds):
            # A fresh user each round: access tokens live 5 minutes, a round on a busy machine longer.
            user = h.new_user(gw, f"bench{i}")
            with CpuMeter(procs) as m:
                runs["direct_boto3"].append(direct(env, path))
            cpu["direct_boto3"].append(m.used)
            with CpuMeter(procs) as m:
                t, s = via_post(gw, user, path, procs)
            cpu["gateway_post"].append(m.used)
            runs["gateway_post"].append(t)
            for n in s.worker_peak:
                peaks["post"][n] = max(peaks["post"].get(n, 0), s.worker_peak[n])
                peaks["post"][n + "_total"] = max(peaks["post"].get(n + "_total", 0), s.total_peak[n])
            with CpuMeter(procs) as m:
                t, s = via_tus(gw, user, path, procs, chunk)
            cpu["gateway_tus"].append(m.used)
            runs["gateway_tus"].append(t)
            for n in s.worker_peak:
                peaks["tus"][n] = max(peaks["tus"].get(n, 0), s.worker_peak[n])
                peaks["tus"][n + "_total"] = max(peaks["tus"].get(n + "_total", 0), s.total_peak[n])
            if args.no_browser:
                continue
            with CpuMeter(procs) as m:
                t, s, browser_cpu = via_browser(gw, user, path, procs, env)
            m.used["client"] = round(browser_cpu, 2)       # Chromium, not this process
            cpu["web_app_chromium"].append(m.used)
            runs["web_app_chromium"].append(t)
            for n in s.worker_peak:
                peaks["web_app"][n] = max(peaks["web_app"].get(n, 0), s.worker_peak[n])
                peaks["web_app"][n + "_total"] = max(peaks["web_app"].get(n + "_total", 0), s.total_peak[n])
        load_after = [round(x, 2) for x in os.getloadavg()]
        # CPU seconds per GiB of each program in the fastest round of each path
        gib = size / (1024 * MiB)
        cpu_best = {k: {n: round(v / gib, 2) for n, v in cpu[k][runs[k].index(min(runs[k]))].items()} for k in runs}
        best = {k: min(v) for k, v in runs.items()}
        mbps = {k: round(size / MiB / v, 1) for k, v in best.items()}
        result = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
            "file_bytes": size, "rounds": args.rounds, "tus_chunk_bytes": chunk,
            "loadavg_before": load, "loadavg_after": load_after,
            "seconds": {k: [round(x, 2) for x in v] for k, v in runs.items()},
            "cpu_seconds_per_gib_best_round": cpu_best,
            "best_mib_per_s": mbps,
            "ratio_post_vs_direct": round(best["direct_boto3"] / best["gateway_post"], 3),
            "ratio_tus_vs_direct": round(best["direct_boto3"] / best["gateway_tus"], 3),
            "ratio_web_app_vs_direct": (round(best["direct_boto3"] / best["web_app_chromium"], 3)
                                        if "web_app_chromium" in best else None),
            "peak_rss_mb_worker": {m: {n: round(v, 1) for n, v in p.items() if not n.endswith("_total")}
                                   for m, p in peaks.items() if p},
            "peak_rss_mb_master_plus_workers": {m: {n[:-6]: round(v, 1) for n, v in p.items() if n.endswith("_total")}
                                                for m, p in peaks.items() if p},
            "s3_sign_payload": os.environ.get("S3_SIGN_PAYLOAD", "true"),
            "part_size_bytes": upload_setting("TUS_PART_SIZE"),
            "parts_in_flight": upload_setting("TUS_PARTS_IN_FLIGHT"),
            "notes": "direct = boto3 upload_file (TransferConfig defaults: 8 MiB parts, 10 threads) to the same "
                     "SeaweedFS; gateway_post = curl-style multipart POST /api/videos; gateway_tus = tus PATCHes of "
                     f"{chunk // MiB} MiB one after the other (the web app's chunk size unless --tus-chunk-mib); "
                     "web_app_chromium = the /upload/ page in headless Chromium (tus-js-client with the page's "
                     "settings), timed from picking the file to the page showing it done, its client CPU "
                     "Chromium's (and the playwright driver's). "
                     "Timings include upload-svc's probe of the finished upload (it reads the local copy written "
                     "while the upload streamed). upload-svc PUTs each part straight to S3 at a URL file-svc signs "
                     "(UNSIGNED-PAYLOAD, as every presigned request; file-svc's cost is the signing); "
                     "S3_SIGN_PAYLOAD only concerns what file-svc stores itself. TUS_PART_SIZE and "
                     "TUS_PARTS_IN_FLIGHT as in part_size_bytes, parts_in_flight. On 2 cores every path is "
                     "CPU-bound: the CPU table says where the time goes, and the ratio is near direct's total "
                     "CPU per GiB over the path's.",
        }
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "upload.json").write_text(json.dumps(result, indent=2) + "\n")
        w = result["peak_rss_mb_worker"]
        md = [f"# Upload benchmark ({result['date']})", "",
              f"{size / MiB:.0f} MiB file, {args.rounds} rounds (best shown), {os.cpu_count()} CPUs, everything on loopback.", "",
              "| path | best time (s) | MiB/s | ratio vs direct |", "|---|---|---|---|",
              f"| boto3 multipart straight to S3 | {best['direct_boto3']:.2f} | {mbps['direct_boto3']} | 1.00 |",
              f"| gateway → upload-svc → S3 (POST /api/videos) | {best['gateway_post']:.2f} | "
              f"{mbps['gateway_post']} | {result['ratio_post_vs_direct']:.2f} |",
              f"| gateway → upload-svc → S3 (tus, {chunk // MiB} MiB PATCHes) | {best['gateway_tus']:.2f} | "
              f"{mbps['gateway_tus']} | {result['ratio_tus_vs_direct']:.2f} |",
              *([f"| the web app in Chromium (tus-js-client, {upload_setting('TUS_CHUNK_SIZE') // MiB} MiB chunks) | "
                 f"{best['web_app_chromium']:.2f} | {mbps['web_app_chromium']} | "
                 f"{result['ratio_web_app_vs_direct']:.2f} |"] if "web_app_chromium" in best else []), "",
              f"Load average (1, 5, 15 min) before: {load}, after: {load_after}.", "",
              "CPU seconds per GiB of each program in each path's fastest round (client = the bench process; "
              "for the web app, Chromium):", "",
              "| path | client | nginx | upload-svc | file-svc | SeaweedFS | total |", "|---|---|---|---|---|---|---|",
              *[f"| {k} | {c.get('client', 0)} | {c.get('gateway', 0)} | {c.get('upload', 0)} | {c.get('file', 0)} | "
                f"{c.get('seaweed', 0)} | {round(sum(c.values()), 2)} |" for k, c in cpu_best.items()], "",
              "Peak RSS of the largest gunicorn worker (MB):", "",
              "| path | upload-svc | file-svc | nginx |", "|---|---|---|---|",
              *[f"| {m} | {w[m].get('upload', 0)} | {w[m].get('file', 0)} | {w[m].get('gateway', 0)} |" for m in w], "",
              result["notes"], ""]
        write_markdown(out / "upload.md", "\n".join(md))
        print("\n".join(md))
    finally:
        stop_stack(procs)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(BENCH.var, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
