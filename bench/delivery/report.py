"""bench/results/delivery.md from the figures bench_delivery.py measured."""
from __future__ import annotations

import math

from cpu import saturated

ONE_OFF = ("device_token", "session_open", "manifest", "init")     # once per playback start
STEADY = ("keys", "heartbeat")                                       # for as long as it plays


def python_bytes(p7: dict) -> dict:
    """Response bytes per viewer-minute at the largest step held without a stall: everything
    that is not /media went through a Python service; /media came from the gateway's cache."""
    s = p7["bytes_step"]
    b, n, minutes = s["bytes"], s["viewers"], s["viewer_minutes"] or 1e-9
    per_min = {k: round(v / minutes) for k, v in sorted(b.items())}
    python = sum(v for k, v in b.items() if k != "media")
    return {"viewers": n, "viewer_minutes": s["viewer_minutes"], "session_s": s["viewer_minutes"] * 60 / max(1, n),
            "per_viewer_minute": per_min,
            "python_per_viewer_minute": round(python / minutes),
            "python_steady_per_viewer_minute": round(sum(b.get(k, 0) for k in STEADY) / minutes),
            "python_per_playback_start": round(sum(b.get(k, 0) for k in ONE_OFF) / n) if n else 0,
            "media_per_viewer_minute": round(b.get("media", 0) / minutes),
            "python_share": round(python / max(1, sum(b.values())), 5)}


def _top(cores: dict, n: int = 5) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(cores.items(), key=lambda kv: -kv[1])[:n])


def _cores(cpu: dict | None) -> str:
    if not cpu:
        return "–"
    busiest = cpu.get("busiest")
    peak = (f"; busiest {busiest['seconds']} s: {busiest['machine_busy_cores']} ({_top(busiest['component_cores'])}), "
            f"{cpu['saturated_seconds']} s with every core busy") if busiest else ""
    return f"{cpu['machine_busy_cores']} ({_top(cpu['component_cores'], 4)}){peak}"


def _step_rows(steps: list[dict]) -> str:
    rows = []
    for s in steps:
        errs = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "0"
        first = (s.get("stalls_by_slot") or {}).get(0, (s.get("stalls_by_slot") or {}).get("0", 0))
        start = (s.get("startup_ms") or {}).get("p99", "–")
        rows.append(f"| {s['viewers']} | {s['stalls']} ({s['stalled_viewers']} viewers; {first} at slot 0) | "
                    f"{start} | {s['worst_late_s']} | "
                    f"{errs} | {s['prepare_s']} s, open p50 {(s['session_open_ms'] or {}).get('p50', '–')} ms | "
                    f"{s['loadgen_cpu_cores']} | {s['loadgen_loop_lag_ms']['p99']} | {_cores(s['cpu'])} |")
    return "\n".join(rows)


def _gateway_times(steps: list[dict]) -> str:
    """The server side's own time for what a start and a playing viewer ask (the gateway's
    $request_time), beside the start the generator saw (the step table's start p99)."""
    lines = []
    for s in steps:
        g = s.get("gateway_request_ms") or {}
        parts = ", ".join(f"{k} {g[k]['p99']} (max {g[k]['max']})" for k in ("manifest", "init", "keys", "heartbeat")
                          if k in g)
        if parts:
            lines.append(f"- {s['viewers']} viewers, the gateway's own time per request, p99 ms: {parts}.")
    return "\n".join(lines)


def _cpu_bound(steps: list[dict], static_best: int, static_reached: bool, cpus: int) -> str:
    """What the ratio goal asks of the machine's cores: the servers' cores (every component but
    the load generator) per viewer in the busiest seconds of the largest gateway step held
    without a stall (else the largest measured), scaled to 0.8x the static ceiling. A bound,
    not a measurement: it assumes the cost per viewer stays what it was at that step (a
    lower bound when that window had every core busy: the servers would have used more)."""
    measured = [s for s in steps if (s.get("cpu") or {}).get("busiest")]
    if not measured or not static_best:
        return ""
    held = [s for s in measured if s["stalls"] == 0]
    s = max(held or measured, key=lambda x: x["viewers"])
    b = s["cpu"]["busiest"]
    servers = sum(v for k, v in b["component_cores"].items() if k != "loadgen")
    target = math.ceil(0.8 * static_best)
    full = saturated(b["machine_busy_cores"], cpus)
    at_least = "at least " if (full or not static_reached) else ""
    return (f"CPU bound of the ratio goal: in the busiest {b['seconds']:g} s of the {s['viewers']}-viewer step "
            f"({'held' if s['stalls'] == 0 else 'not held'}) the servers (every component but the load generator) "
            f"used {servers:.2f} cores, {servers / s['viewers'] * 1000:.2f} per 1000 viewers, the load generator "
            f"{b['component_cores'].get('loadgen', 0):.2f}, the machine {b['machine_busy_cores']} of {cpus}"
            f"{' (every core busy: a lower bound of what the servers would have used)' if full else ''}. 0.8x the static ceiling is "
            f"{'at least ' if not static_reached else ''}{target} viewers: at that cost per viewer the servers alone "
            f"would need {at_least}{servers / s['viewers'] * target:.1f} cores.")


MODES_NOTE = """`as_players_send_them`: with the session cache off (`SESSION_CACHE_SECONDS=0`), as a player's
requests find it, about 30 s apart per track; `back_to_back`: with the default 1 s cache. Since
migration 026 a key request reads its session in the release's own round trip and uses no
session cache, so the two should agree (before, the cached case saved a round trip). CPU speed
anchor: a fixed pure-Python loop took {cpu_anchor_ms} ms in this run (this machine's speed varies
from day to day by up to 1.7x: compare runs through it)."""


def p5_in_process_table(ip: dict) -> str:
    rows = [f"| {mode} | {m['session_cache_seconds']:g} s | **{m['view_p50_ms']}** | {m['view_p99_ms']} | "
            f"{m['wsgi_p50_ms']} | {m['wsgi_p99_ms']} | {m['wsgi_cpu_p50_ms']} | "
            f"{m['db_calls_per_request']['cmd_query']} ({m['db_calls_per_request']['commit']} commits, "
            f"{m['db_calls_per_request'].get('cmd_ping', '?')} pings) |"
            for mode, m in ip["modes"].items()]
    return ("| mode | session cache | view p50 ms | view p99 ms | WSGI p50 ms | WSGI p99 ms | WSGI CPU p50 ms "
            "| MariaDB statements per request |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def p5_markdown(ip: dict) -> str:
    """bench/results/delivery-p5.md: P5 in-process run on its own (bench_delivery.py -k p5_in_process)."""
    players = ip["modes"]["as_players_send_them"]
    prof = "; ".join(f"`{k}` {v} ms" for k, v in list(players["profile_self_ms_per_request"].items())[:8])
    return f"""# Key endpoint in-process (P5 alone)

{ip['requests']} requests of {ip['keys_per_request']} keys per mode through WSGI (no network, no
gunicorn) on one live session of the test stack's MariaDB; load average at the end {ip['loadavg']}.
Command: `SV_TEST_STACK=<name> SV_TEST_OFFSET=<n> BENCH_CLIP_SECONDS=40 .venv/bin/python -m pytest
bench/delivery/bench_delivery.py -k p5_in_process -q -s`.

{p5_in_process_table(ip)}

{MODES_NOTE.format(cpu_anchor_ms=ip.get('cpu_anchor_ms', '(not measured)'))}
Where an as-players request's CPU time goes (cProfile on thread CPU time, self time per request, top functions): {prof}.
The view's parts (Server-Timing, p50 ms, as players send them): {players.get('view_parts_p50_ms', '(not measured)')}.

Raw figures: delivery-p5.json. Finished {ip['finished_at']}.
"""


def markdown(o: dict) -> str:
    p1, p7, p5, pb = o["p1"], o["p7"], o["p5"], o["python_bytes"]
    rows = "\n".join(f"| {k} | {v['req_per_s']} | {v['mb_per_s']} | {v['p50_ms']} | {v['p99_ms']} | {v['errors']} | "
                     f"{v['x_cache_status']} | {v['loadgen_cpu_cores']} |"
                     for k, v in p1.items() if isinstance(v, dict))
    plan, best = p7["plan"], p7["max_viewers_without_stall"]
    ceiling = "" if p7["static_ceiling_reached"] else " (no stall at the largest step tried: the ceiling is higher)"
    head = ("| viewers | stalled slots | start p99 ms (click to manifest and init) | worst lateness s (negative: "
            "margin) | errors | prepare (untimed) | loadgen CPU cores | loadgen loop lag p99 ms | machine busy "
            "cores on average (top components); in the busiest 10 s, and seconds with every core busy |\n"
            "|---|---|---|---|---|---|---|---|---|")
    u, ip = p5["under_load"], p5["in_process"]
    per = ", ".join(f"{k} {v}" for k, v in pb["per_viewer_minute"].items())
    players = ip["modes"]["as_players_send_them"]
    prof = "; ".join(f"`{k}` {v} ms" for k, v in list(players["profile_self_ms_per_request"].items())[:8])
    return f"""# Delivery benchmarks (P1, P7, P5, bytes through Python)

Machine: {o['machine']['cpus']} CPUs (load average at start {o['machine']['loadavg_at_start']}); load generator,
gateway, services, MariaDB and S3 all on the same loopback host. streaming-svc: {o['streaming_workers']};
bench settings {o['bench_env']} (viewers share accounts), everything else default. Rendition {o['rendition']},
{o['segments']} segments of 2 s, mean {o['segment_bytes_mean'] / 1e6:.2f} MB
(audio {o['audio_segment_bytes_mean'] / 1e3:.0f} kB).

## P1 — encrypted segments from the gateway's cache vs nginx serving the same plaintext
{p1['concurrency']} keep-alive clients in {p1['loadgen_processes']} processes, back to back,
{p1['seconds_per_mode']} s per mode (two rounds, alternating), the same {p1['urls']} URLs (both variants of every
720p segment), same run, same load generator.

| mode | req/s | MB/s | p50 ms | p99 ms | errors | X-Cache-Status | loadgen CPU cores |
|---|---|---|---|---|---|---|---|
{rows}

**Gateway (cached ciphertext) vs static plaintext: {p1['ratio_gateway_vs_static']}× req/s,
{p1['ratio_gateway_vs_static_bytes']}× MB/s** (goal ≥ 0.8×; v1 was 0.134×). streaming_direct_miss_path: what
streaming-svc alone answers per second when every request misses the cache.

## P7 — realtime viewers with zero stalls
Each gateway viewer is a real session opened through the API: device key + device-bound token
(DPoP), ECDH key exchange (KEK, CEK, first keys in the response), manifest and init segments
through streaming-svc, then segments (720p{' + audio' if plan['audio'] else ''}) from /media on
the realtime schedule ({plan['segment_seconds']} s segments, slot 0 due {plan['startup_s']} s after the click, at most
{plan['buffer_ahead_segments']} segments ahead), keys from the key endpoint in runs of {plan['keys_per_request']}
per request (the last repeated),
{plan['keys_ahead']} kept ahead (as the player does; the {o['segments']}-segment clip is looped, so requests
clipped at its end come more often than in a long video), heartbeats at the session's interval, slot 0 of each track
decrypted with the released key. Viewers join at {plan['join_rate_per_s']:g} per second (over at least
{plan['ramp_min_s']:g} s) and each plays until all have played together for {plan['hold_s']:g} s. A segment not in
by its playback time is a stall. Each viewer keeps one keep-alive connection for media and API calls
alike (a second one for API calls made the generator the bottleneck: viewers.py). The anchor: the same
loop (same schedule, same connection) fetching the plaintext files from static nginx, no session. {plan['accounts']} accounts,
{plan['loadgen_processes']} load-generator processes.

Gateway:

{head}
{_step_rows(p7['steps']['gateway'])}

{_gateway_times(p7['steps']['gateway'])}

Static nginx (ceiling):

{head}
{_step_rows(p7['steps']['nginx_static'])}

**Largest step with zero stalls: {best['gateway']} viewers through the gateway, {best['nginx_static']} from static
nginx{ceiling}; ratio {p7['ratio_vs_static']}×** (goal ≥ 2000 viewers and ≥ 0.8×; v1: 200 viewers).
{_cpu_bound(p7['steps']['gateway'], best['nginx_static'], p7['static_ceiling_reached'], o['machine']['cpus'])}

## P5 — key endpoint, server side
Under load (Server-Timing `app;dur`, the whole view incl. DPoP checks, {u['responses']} key responses of the
gateway steps {u['at_steps']}, real players' timing, default settings): p50 **{u['app_p50_ms']} ms**, p99 {u['app_p99_ms']} ms.
In-process WSGI ({ip['requests']} requests of {ip['keys_per_request']} keys per mode, load average {ip['loadavg']}):

{p5_in_process_table(ip)}

{MODES_NOTE.format(cpu_anchor_ms=ip.get('cpu_anchor_ms', '(not measured)'))}
Goal p50 < 1 ms. Where an as-players request's CPU time goes (cProfile on thread CPU time, self
time per request, top functions): {prof}.

## Bytes through Python per viewer-minute
At {pb['viewers']} viewers ({pb['viewer_minutes']} viewer-minutes, sessions of {pb['session_s']:.0f} s of media):
response bytes per viewer-minute by request kind: {per}.
Through Python: **{pb['python_per_viewer_minute']} B per viewer-minute**
({pb['python_share'] * 100:.3f} % of all bytes),
of which steady playback (keys + heartbeats) {pb['python_steady_per_viewer_minute']} B/min and, once per playback
start, {pb['python_per_playback_start']} B (device token, session, manifest, init segments). Media from the gateway's
cache: {pb['media_per_viewer_minute'] / 1e6:.1f} MB per viewer-minute.

Raw figures: delivery.json. Finished {o['finished_at']}.
"""
