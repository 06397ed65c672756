"""Delivery v2 benchmarks against the real stack on loopback: P1 (encrypted segments from the
gateway's cache vs nginx serving the same plaintext files), P7 (realtime viewers with zero
stalls, each a real session, vs the same viewer loop against static nginx), P5 (key
endpoint, server side) and the bytes that still pass through Python per viewer-minute.

Run:  SV_TEST_STACK=bench-play SV_TEST_OFFSET=14500 .venv/bin/python -m pytest bench/delivery/bench_delivery.py \
        -k test_delivery_benchmark -q -s
(``-k p1_only``: P1 alone, quick, printed, not written to results; ``-k api_cpu``: CPU per request
kind a playing viewer sends (manifest, init, heartbeat, keys), written to delivery-api-cpu.json;
``-k p5_in_process``: P5's
in-process part alone, written to delivery-p5.json/.md;
the root conftest starts MariaDB, SeaweedFS, every service and the gateway; the media
worker processes a BENCH_CLIP_SECONDS (64) s 1280x720 clip). Writes bench/results/delivery.json
and delivery.md (BENCH_RESULTS: another folder). Knobs (env): BENCH_SECONDS (P1 s per mode),
BENCH_CONCURRENCY (P1 clients), BENCH_VIEWER_STEPS (gateway), BENCH_STATIC_STEPS (anchor),
BENCH_JOIN_RATE, BENCH_RAMP_SECONDS (at least), BENCH_HOLD_SECONDS (all viewers together),
BENCH_REFINE_STEPS, BENCH_DEADLINE (epoch s: no P7 step starts that would end later),
BENCH_LOADGEN_PROCS, BENCH_LOADGEN_GC (off: no cyclic collection in the generator during play),
BENCH_LOADGEN_NICE (e.g. -5), BENCH_LOADGEN_PROFILE (a file prefix: each generator process's
cProfile of its play window), BENCH_ACCOUNTS.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import pytest
import requests

from svcommon.media_crypto import ContentSealer
from svcommon.media_keys import audio_init_key, encrypted_segment_key, init_key
from tests.support.contract_client import decrypt_segment
from tests.support.media import make_clip
from tests.support.videos import make_ready_video, register_user, restart_service

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crowd import Crowd  # noqa: E402
from p5_keys import api_cpu_in_process, key_endpoint_in_process  # noqa: E402
from cpu import CpuWindow, machine  # noqa: E402
from loadgen import StaticNginx, Tally, closed_loop, gateway_request_ms, quantile  # noqa: E402
from report import markdown, p5_markdown, python_bytes  # noqa: E402
from viewers import Plan  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results"))
ENV = os.environ.get
SECONDS = float(ENV("BENCH_SECONDS", "8"))
CONCURRENCY = int(ENV("BENCH_CONCURRENCY", "16"))
STEPS = [int(x) for x in ENV("BENCH_VIEWER_STEPS", "1000,2000,3000").split(",")]
STATIC_STEPS = [int(x) for x in ENV("BENCH_STATIC_STEPS", "2000,3000,4000").split(",")]
# Viewers arrive at JOIN_RATE per second (at least over RAMP_MIN s): a whole audience clicking
# within seconds is a flash crowd, not the concurrency asked about. Every viewer plays until
# HOLD s after the last one joined, so all n play together for HOLD s (and heartbeat at 30 s).
JOIN_RATE = float(ENV("BENCH_JOIN_RATE", "50"))
RAMP_MIN = float(ENV("BENCH_RAMP_SECONDS", "8"))
HOLD = float(ENV("BENCH_HOLD_SECONDS", "24"))
REFINE = int(ENV("BENCH_REFINE_STEPS", "2"))
DEADLINE = float(ENV("BENCH_DEADLINE", "inf"))
PROCS = int(ENV("BENCH_LOADGEN_PROCS", "3"))
ACCOUNTS = int(ENV("BENCH_ACCOUNTS", "20"))
CLIP_SECONDS = int(ENV("BENCH_CLIP_SECONDS", "64"))
# The player's key requests (player.js KEY_RUN; viewers.Plan.key_prefetch) unless set, e.g.
# BENCH_KEY_RUN=16 BENCH_KEYS_AHEAD=5 for the player before 2026-12-06 (16 keys per request).
KEY_RUN = tuple(int(x) for x in ENV("BENCH_KEY_RUN", "8,4,8,16").split(","))
KEYS_AHEAD = int(ENV("BENCH_KEYS_AHEAD", "4"))
RENDITION = "720p"
# Viewers share BENCH_ACCOUNTS accounts, so the per-user stream limit is raised; every other
# setting (key pacing, rotation, heartbeats, session TTL) is the default.
BENCH_ENV = {"MAX_CONCURRENT_STREAMS": "100000"}


@pytest.fixture(scope="module")
def bench_stack(live_stack):
    restart_service(live_stack, "streaming", {**live_stack["env"], **BENCH_ENV})
    yield live_stack
    restart_service(live_stack, "streaming", live_stack["env"])


@pytest.fixture(scope="module")
def video(bench_stack, worker_app, mdb, stores, tmp_path_factory):
    owner = register_user(bench_stack["url"], "bench")
    clip = make_clip(tmp_path_factory.mktemp("bench") / "clip720.mp4", seconds=CLIP_SECONDS,
                     size="1280x720").read_bytes()
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="bench 720p")
    cur = mdb.cursor()
    cur.execute("SELECT metadata, content_secret_enc, delivery_version FROM video_media WHERE video_id = %s", (vid,))
    meta, sealed, version = cur.fetchone()
    assert version == 2
    return vid, json.loads(meta), bytes(sealed), owner


def _plaintext_tree(root: Path, vid: str, meta: dict, keys, store) -> dict:
    """The same segments, decrypted, at the same /media paths (both variants), plus the init
    segments: what static nginx serves. Returns the viewer table for static viewers."""
    table = {"video": [], "audio": [], "inits": []}
    tracks = [(RENDITION, meta["segment_count"], "ab"), ("audio", len(meta["audio"]["segment_sizes"]), "-")]
    for rendition, count, variants in tracks:
        folder = root / "media" / vid / rendition
        folder.mkdir(parents=True)
        for i in range(count):
            row = []
            for v in variants:
                name = keys.file_name(rendition, v, i)
                body = store.get_bytes(encrypted_segment_key(vid, rendition, name))
                track = "audio" if rendition == "audio" else "video"
                plain = decrypt_segment(keys.segment_key(track, v, i), vid, rendition, i, body)
                (folder / name).write_bytes(plain)
                row.append(f"/media/{vid}/{rendition}/{name}")
            table["video" if rendition != "audio" else "audio"].append(row if rendition != "audio" else row[0])
    (root / "init").mkdir()
    for name, key in (("video.mp4", init_key(vid, RENDITION)), ("audio.mp4", audio_init_key(vid))):
        (root / "init" / name).write_bytes(store.get_bytes(key))
        table["inits"].append(f"/init/{name}")
    return table


def _bearers(gw: str, accounts: list[dict]) -> list[str]:
    """Fresh account tokens (ACCESS_TOKEN_TTL is 300 s) for the step's device-token requests."""
    out = []
    for a in accounts:
        r = requests.post(f"{gw}/api/auth/login", json={"username": a["username"], "password": a["password"]})
        assert r.status_code == 200, r.text
        out.append(r.json()["access_token"])
    return out


def _ladder(ladder: list[int], done: list[dict]):
    """The steps in order until one stalls, then up to REFINE steps bisecting between the
    last held step and the first stalled one (to 50 viewers), for a finer answer at the edge.
    No step starts past BENCH_DEADLINE (epoch seconds), so a run always finishes its report."""
    def time_left(n: int) -> bool:
        return time.time() + max(RAMP_MIN, n / JOIN_RATE) + HOLD + n / 40 < DEADLINE
    for n in ladder:
        if not time_left(n):
            return
        yield n
        if not _held(done[-1]):
            break
    else:
        return
    for _ in range(REFINE):
        held = max([s["viewers"] for s in done if _held(s)] or [0])
        failed = min(s["viewers"] for s in done if not _held(s))
        mid = (held + failed) // 2 // 50 * 50
        if not held < mid < failed or not time_left(mid):
            return
        yield mid


def _held(step: dict) -> bool:
    return step["stalls"] == 0 and not step["errors"] and step["prepare_failed"] == 0 and step["slots"] > 0


def test_delivery_benchmark(bench_stack, video, stores, service_config, mdb, tmp_path):
    vid, meta, sealed, owner = video
    gw = bench_stack["url"]
    keys = ContentSealer(service_config["MEDIA_MASTER_KEY"]).open(sealed, vid)
    table = _plaintext_tree(tmp_path / "plain", vid, meta, keys, stores["streaming"])
    enc_paths = [p for row in table["video"] for p in row]
    sizes = [(tmp_path / "plain" / p.lstrip("/")).stat().st_size for p in enc_paths]
    groups = {name: proc.pid for name, proc in bench_stack["procs"].procs}
    # This process's group: the load generator's processes (and this test, idle while they play);
    # every stack component runs in a session of its own.
    groups["loadgen"] = os.getpgid(0)
    out = {"machine": machine(), "rendition": RENDITION, "segments": meta["segment_count"],
           "segment_bytes_mean": int(statistics.fmean(sizes)), "audio_segment_bytes_mean": int(statistics.fmean(
               (tmp_path / "plain" / p.lstrip("/")).stat().st_size for p in table["audio"])),
           "streaming_workers": "gunicorn 2 processes x 8 threads (the stack default)", "bench_env": BENCH_ENV}
    port = 40000 + bench_stack["stack"].offset % 10000 + 91
    with StaticNginx(tmp_path / "plain", port) as ngx:
        static = f"http://127.0.0.1:{port}"
        groups["static_nginx"] = ngx.proc.pid
        out["p1"] = _p1(gw, static, enc_paths, bench_stack["stack"].url("streaming"))
        print("P1", json.dumps(out["p1"]), flush=True)
        _save(out)
        out["p7"] = _p7(gw, static, vid, table, groups, lambda steps: _save({**out, "p7_so_far": steps}),
                        bench_stack["stack"].var / "nginx" / "logs" / "access.log")
    out["python_bytes"] = python_bytes(out["p7"])
    out["p5"] = {"under_load": out["p7"].pop("key_server_timing"),
                 "in_process": key_endpoint_in_process({**service_config, **BENCH_ENV}, gw, vid, mdb)}
    out["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _save(out)
    write_markdown(RESULTS / "delivery.md", markdown(out))
    print(markdown(out))
    assert out["p1"]["gateway_cache"]["errors"] == 0


def _save(out: dict) -> None:
    """delivery.json after each phase (delivery.md at the end): a run cut short keeps its figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "delivery.json").write_text(json.dumps(out, indent=2) + "\n")


def _p1(gw: str, static: str, paths: list[str], direct: str) -> dict:
    for base in (static, gw, gw):                   # warm-up: the first pass fills the gateway's cache
        for p in paths:
            assert requests.get(base + p).status_code == 200, (base, p)
    # Two rounds, alternating (A B B A), so a change in the machine's other load hits both alike.
    rounds = {"nginx_static_plaintext": Tally(), "gateway_cache": Tally()}
    for name in ("nginx_static_plaintext", "gateway_cache", "gateway_cache", "nginx_static_plaintext"):
        t = closed_loop(static if name.startswith("nginx") else gw, paths, CONCURRENCY, SECONDS / 2, PROCS)
        rounds[name].merge(t, sequential=True)
    p1 = {name: t.summary() for name, t in rounds.items()}
    # Not the delivery path (the gateway answers from its cache): what one cache miss costs.
    p1["streaming_direct_miss_path"] = closed_loop(direct, paths, CONCURRENCY, min(SECONDS, 4), PROCS).summary()
    base = p1["nginx_static_plaintext"]
    p1["ratio_gateway_vs_static"] = round(p1["gateway_cache"]["req_per_s"] / base["req_per_s"], 3)
    p1["ratio_gateway_vs_static_bytes"] = round(p1["gateway_cache"]["mb_per_s"] / base["mb_per_s"], 3)
    p1.update(concurrency=CONCURRENCY, seconds_per_mode=SECONDS, loadgen_processes=PROCS, urls=len(paths))
    return p1


def _p7(gw: str, static: str, vid: str, table: dict, groups: dict, progress, gateway_log: Path) -> dict:
    accounts = [register_user(gw, "viewer") for _ in range(ACCOUNTS)]
    plan = Plan(gateway=gw, video_id=vid, rendition=RENDITION, slots=0, key_run=KEY_RUN, key_prefetch=KEYS_AHEAD)
    live, anchor = Crowd(plan, PROCS), Crowd(plan, PROCS, static)
    steps = {"gateway": [], "nginx_static": []}
    shape = lambda n: {"ramp": max(RAMP_MIN, n / JOIN_RATE),  # noqa: E731
                       "slots": math.ceil((max(RAMP_MIN, n / JOIN_RATE) + HOLD) / plan.seg_seconds)}
    def gateway_step(n: int) -> dict:
        offset = gateway_log.stat().st_size
        step = live.step(n, **shape(n), bearers=_bearers(gw, accounts), cpu_window=CpuWindow(groups))
        time.sleep(2.5)                     # the gateway flushes its /media log lines every 2 s
        return {**step, "gateway_request_ms": gateway_request_ms(gateway_log, offset)}

    runs = {"gateway": gateway_step,
            "nginx_static": lambda n: anchor.step(n, **shape(n), static=table, cpu_window=CpuWindow(groups))}
    ladders = {"gateway": _ladder(STEPS, steps["gateway"]),
               "nginx_static": _ladder(STATIC_STEPS, steps["nginx_static"])}
    try:
        while ladders:                      # alternate, so both see the machine in the same state
            for name in list(ladders):
                n = next(ladders[name], None)
                if n is None:
                    del ladders[name]
                    continue
                steps[name].append(runs[name](n))
                print("P7", name, n, {k: v for k, v in steps[name][-1].items() if k != "tally"}, flush=True)
                progress({k: [{**x, "tally": _tally_summary(x["tally"])} for x in v] for k, v in steps.items()})
    finally:
        live.close()
        anchor.close()
    best = {k: max([s["viewers"] for s in v if _held(s)] or [0]) for k, v in steps.items()}
    ceiling_reached = not all(_held(s) for s in steps["nginx_static"])
    timing = [t for s in steps["gateway"] for t in s["tally"].key_app_ms]
    held = [s for s in steps["gateway"] if _held(s)]
    top = held[-1] if held else steps["gateway"][0]
    out = {"plan": {"join_rate_per_s": JOIN_RATE, "ramp_min_s": RAMP_MIN, "hold_s": HOLD,
                    "segment_seconds": plan.seg_seconds, "startup_s": plan.startup,
                    "buffer_ahead_segments": plan.ahead, "keys_per_request": "/".join(map(str, plan.key_run)),
                    "keys_ahead": plan.key_prefetch,
                    "audio": plan.audio, "accounts": ACCOUNTS, "loadgen_processes": PROCS},
           "steps": {k: [{**s, "tally": _tally_summary(s["tally"])} for s in v] for k, v in steps.items()},
           "max_viewers_without_stall": best, "static_ceiling_reached": ceiling_reached,
           "ratio_vs_static": round(best["gateway"] / best["nginx_static"], 3) if best["nginx_static"] else None,
           "bytes_step": {"viewers": top["viewers"], "requests": top["tally"].requests, "bytes": top["tally"].bytes,
                          "viewer_minutes": round(top["tally"].media_seconds / 60, 1)},
           "key_server_timing": {"responses": len(timing), "app_p50_ms": round(quantile(timing, 0.5), 3),
                                 "app_p99_ms": round(quantile(timing, 0.99), 3),
                                 "at_steps": [s["viewers"] for s in steps["gateway"]]}}
    return out


def _tally_summary(t) -> dict:
    lat = t.key_latency_ms
    return {"requests": t.requests, "bytes": t.bytes, "pace_refusals": t.pace_refusals, "decrypted": t.decrypted,
            "viewer_minutes": round(t.media_seconds / 60, 1),
            "key_latency_ms": {"p50": round(quantile(lat, 0.5), 2), "p99": round(quantile(lat, 0.99), 2)}}


def test_p5_in_process(bench_stack, video, service_config, mdb):
    """P5 alone, in-process (no load; a quick check while tuning the key endpoint), both modes;
    written to bench/results/delivery-p5.json and .md:
    ... -m pytest bench/delivery/bench_delivery.py -k p5_in_process -q -s (BENCH_CLIP_SECONDS=40: a key request asks for 16 segments)."""
    ip = key_endpoint_in_process({**service_config, **BENCH_ENV}, bench_stack["url"], video[0], mdb)
    ip["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "delivery-p5.json").write_text(json.dumps(ip, indent=2) + "\n")
    write_markdown(RESULTS / "delivery-p5.md", p5_markdown(ip))
    print("P5", json.dumps(ip, indent=1))


def test_p1_only(bench_stack, video, stores, service_config, tmp_path):
    """P1 alone (a quick check while tuning the gateway; not written to results):
    ... -m pytest bench/delivery/bench_delivery.py -k p1_only -q -s (BENCH_SECONDS=4 is enough)."""
    vid, meta, sealed, _ = video
    keys = ContentSealer(service_config["MEDIA_MASTER_KEY"]).open(sealed, vid)
    table = _plaintext_tree(tmp_path / "plain", vid, meta, keys, stores["streaming"])
    port = 40000 + bench_stack["stack"].offset % 10000 + 91
    with StaticNginx(tmp_path / "plain", port):
        p1 = _p1(bench_stack["url"], f"http://127.0.0.1:{port}", [p for row in table["video"] for p in row],
                 bench_stack["stack"].url("streaming"))
    print("P1", json.dumps(p1, indent=1))


def test_api_cpu_in_process(bench_stack, video, service_config, mdb):
    """CPU per request kind a playing viewer sends to streaming-svc (manifest, init, heartbeat,
    keys), in-process, with profiles; printed and written to delivery-api-cpu.json:
    ... -m pytest bench/delivery/bench_delivery.py -k api_cpu -q -s (BENCH_CLIP_SECONDS=40: a key request asks for 16 segments)."""
    out = api_cpu_in_process({**service_config, **BENCH_ENV}, bench_stack["url"], video[0], mdb)
    out["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "delivery-api-cpu.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v["cpu_p50_ms"] for k, v in out["kinds"].items()}), out["loadavg"], out["cpu_anchor_ms"])
