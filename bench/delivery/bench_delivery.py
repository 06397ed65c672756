"""P1 (encrypted delivery vs nginx static) and P5 (server overhead per segment request,
excluding encryption), against the real stack on loopback.

Run:  SV_TEST_STACK=bench-play SV_TEST_OFFSET=14500 .venv/bin/python -m pytest bench/delivery/bench_delivery.py -q -s
(the root conftest starts MariaDB, SeaweedFS, every service and the gateway; the media
worker processes a 16 s 1280x720 clip). Writes bench/results/delivery.json and delivery.md.

P1: the same 2 s 720p segments (variant A bytes), fetched back to back by C concurrent
keep-alive clients for a fixed time: (a) nginx serving the plaintext files statically,
(b) streaming-svc through the gateway (session lookup, LRU, codeword, AES-256-GCM),
(c) streaming-svc directly. Then realtime viewers (one session each, 2 s segments,
2 s start-up, ≤2 segments ahead) in steps until a step has a stall.
P5: in-process WSGI calls of the segment endpoint (Flask routing, hooks, session cache,
LRU, codeword) with the encryption time (Server-Timing "enc") subtracted.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.test import EnvironBuilder

from svcommon.media_keys import segment_key
from tests.support.contract_client import ContractClient
from tests.support.media import make_clip
from tests.support.videos import make_ready_video, mdb, register_user, restart_service, stores, worker_app  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import StaticNginx, closed_loop, machine, realtime_viewers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
VIEWER_STEPS = [int(x) for x in os.environ.get("BENCH_VIEWER_STEPS", "25,50,100,200,400").split(",")]
BENCH_ENV = {"MAX_CONCURRENT_STREAMS": "100000", "SESSION_TTL_SECONDS": "900", "KEY_ROTATION_SECONDS": "900"}


@pytest.fixture(scope="module")
def bench_stack(live_stack):
    restart_service(live_stack, "streaming", {**live_stack["env"], **BENCH_ENV})
    yield live_stack
    restart_service(live_stack, "streaming", live_stack["env"])


@pytest.fixture(scope="module")
def video(bench_stack, worker_app, mdb, stores, tmp_path_factory):  # noqa: F811
    owner = register_user(bench_stack["url"], "bench")
    clip = make_clip(tmp_path_factory.mktemp("bench") / "clip720.mp4", seconds=16, size="1280x720").read_bytes()
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="bench 720p")
    cur = mdb.cursor()
    cur.execute("SELECT metadata FROM video_media WHERE video_id = %s", (vid,))
    return vid, json.loads(cur.fetchone()[0]), owner


def _paths(urls: list[str]) -> list[str]:
    return [urlsplit(u).path for u in urls]


def test_delivery_benchmark(bench_stack, video, stores, service_config, tmp_path):  # noqa: F811
    vid, meta, owner = video
    gw = bench_stack["url"]
    rendition = "720p"
    assert rendition in {r["name"] for r in meta["renditions"]}
    nseg = meta["segment_count"]
    client = ContractClient(gw).login(owner["username"], owner["password"])
    session = client.open_session(vid)
    rep = next(r for r in client.representations(session) if r.id == rendition)
    enc_paths = _paths(rep.segment_urls)

    # The same bytes, plaintext, for nginx to serve statically.
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    sizes = []
    for i in range(nseg):
        body = stores["streaming"].get_bytes(segment_key(vid, rendition, "a", i))
        (plain_dir / f"{i:05d}.m4s").write_bytes(body)
        sizes.append(len(body))
    plain_paths = [f"/{i:05d}.m4s" for i in range(nseg)]
    direct = bench_stack["stack"].url("streaming")

    out = {"machine": machine(), "segment_bytes_mean": int(statistics.fmean(sizes)), "segments": nseg,
           "rendition": rendition, "concurrency": CONCURRENCY, "seconds_per_mode": SECONDS,
           "streaming_workers": "gunicorn 2 processes x 8 threads (the stack default)"}
    with StaticNginx(plain_dir, 40000 + bench_stack["stack"].offset % 10000 + 91) as ngx:
        static_base = f"http://127.0.0.1:{ngx.port}"
        closed_loop(static_base, plain_paths, 4, 1.0)            # warm-up
        closed_loop(gw, enc_paths, 4, 1.0)
        p1 = {
            "nginx_static_plaintext": closed_loop(static_base, plain_paths, CONCURRENCY, SECONDS).summary(),
            "streaming_via_gateway": closed_loop(gw, enc_paths, CONCURRENCY, SECONDS).summary(),
            "streaming_direct": closed_loop(direct, enc_paths, CONCURRENCY, SECONDS, keep_timing=True),
        }
    st = p1["streaming_direct"].server_timing
    p1["streaming_direct"] = p1["streaming_direct"].summary()
    p1["streaming_direct"]["server_app_p50_ms"] = round(statistics.median(t["app"] for t in st), 3)
    p1["streaming_direct"]["server_enc_p50_ms"] = round(statistics.median(t["enc"] for t in st), 3)
    base = p1["nginx_static_plaintext"]["req_per_s"]
    p1["ratio_gateway_vs_static"] = round(p1["streaming_via_gateway"]["req_per_s"] / base, 3)
    p1["ratio_direct_vs_static"] = round(p1["streaming_direct"]["req_per_s"] / base, 3)
    out["p1"] = p1

    # Realtime viewers: one session each, through the gateway.
    steps, best = [], 0
    for n in VIEWER_STEPS:
        viewers = []
        for _ in range(n):
            s = client.open_session(vid)
            viewers.append(_paths(next(r for r in client.representations(s) if r.id == rendition).segment_urls))
        r = realtime_viewers(gw, viewers)
        steps.append(r)
        print("viewers", r, flush=True)
        if r["stalls"]:
            break
        best = n
    out["p1_realtime"] = {"steps": steps, "max_viewers_without_stall": best,
                          "segment_seconds": 2.0, "note": "segments of 720p only (no audio), not decrypted"}

    out["p5"] = _p5(service_config, session, rep, enc_paths)
    out["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "delivery.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "delivery.md").write_text(_markdown(out))
    print(json.dumps(out, indent=2))


def _p5(service_config, session, rep, paths: list[str], n: int = 2000) -> dict:
    """The segment endpoint in-process (no network, no gunicorn): full WSGI time minus
    the encryption time the view reports. Session lookups hit the 1 s cache, segments
    the LRU (the steady state of a player); one cold DB lookup per second is included."""
    from streaming_svc import create_app
    app = create_app({**service_config, "LOG_LEVEL": "WARNING"})
    templates = [EnvironBuilder(path=p, method="GET").get_environ() for p in paths]
    headers_box = {}

    def start_response(status, headers, exc_info=None):
        headers_box["status"], headers_box["headers"] = status, dict(headers)

    def call(i):
        env = dict(templates[i % len(templates)])
        env["wsgi.input"] = io.BytesIO(b"")
        t0 = time.perf_counter()
        body = b"".join(app(env, start_response))
        total = time.perf_counter() - t0
        assert headers_box["status"].startswith("200"), headers_box
        timing = dict(part.strip().split(";dur=") for part in headers_box["headers"]["Server-Timing"].split(","))
        return total * 1000, float(timing["enc"]), float(timing["app"]), len(body)

    for i in range(200):     # warm the LRU and the session cache
        call(i)
    samples = [call(i) for i in range(n)]
    overhead = sorted(t - e for t, e, _, _ in samples)
    enc = sorted(e for _, e, _, _ in samples)
    app_only = sorted(a for _, _, a, _ in samples)
    q = lambda xs, p: round(xs[int(p * (len(xs) - 1))], 3)  # noqa: E731
    return {"requests": n, "overhead_excl_encryption_p50_ms": q(overhead, 0.5),
            "overhead_excl_encryption_p99_ms": q(overhead, 0.99), "view_before_encryption_p50_ms": q(app_only, 0.5),
            "encryption_p50_ms": q(enc, 0.5), "segment_bytes_mean": int(statistics.fmean(s[3] for s in samples))}


def _markdown(o: dict) -> str:
    p1, p5, rt = o["p1"], o["p5"], o["p1_realtime"]
    rows = "\n".join(f"| {k} | {v['req_per_s']} | {v['mb_per_s']} | {v['p50_ms']} | {v['p99_ms']} | {v['errors']} |"
                     for k, v in p1.items() if isinstance(v, dict))
    steps = ", ".join(f"{s['viewers']}→{s['stalls']} stalls" for s in rt["steps"])
    return f"""# Delivery benchmarks (P1, P5)

Machine: {o['machine']['cpus']} CPUs shared with other work (load average at start {o['machine']['loadavg_at_start']});
client, gateway, services, MariaDB and S3 all on the same loopback host. {o['streaming_workers']}.
Rendition {o['rendition']}, {o['segments']} segments of 2 s, mean {o['segment_bytes_mean'] / 1e6:.2f} MB.

## P1 — encrypted delivery vs nginx serving the same plaintext bytes
{o['concurrency']} keep-alive clients back to back, {o['seconds_per_mode']} s per mode, same run.

| mode | req/s | MB/s | p50 ms | p99 ms | errors |
|---|---|---|---|---|---|
{rows}

Ratio (req/s) through the gateway vs static: **{p1['ratio_gateway_vs_static']}×**; direct: **{p1['ratio_direct_vs_static']}×** (goal ≥ 0.6×).
Inside streaming-svc (Server-Timing, p50): before encryption {p1['streaming_direct']['server_app_p50_ms']} ms,
AES-256-GCM {p1['streaming_direct']['server_enc_p50_ms']} ms per segment.

Realtime viewers (one session each, 2 s segments, start-up 2 s, ≤ 2 segments ahead): {steps}.
**Largest step held with zero stalls: {rt['max_viewers_without_stall']} viewers.**

## P5 — server-side overhead per segment request, excluding encryption
In-process WSGI calls ({p5['requests']} requests, warm caches): p50 **{p5['overhead_excl_encryption_p50_ms']} ms**
(p99 {p5['overhead_excl_encryption_p99_ms']} ms; goal p50 < 1 ms). Of which in the view before encryption:
{p5['view_before_encryption_p50_ms']} ms. Encryption itself: {p5['encryption_p50_ms']} ms p50.

Raw figures: delivery.json. Finished {o['finished_at']}.
"""
