"""P5 in-process: the key endpoint called through WSGI (no network, no gunicorn) on a live
session of the real stack's database, timed, and profiled to show where a request's time goes.

Two modes, same run, same session. ``as_players_send_them``: a player asks for keys every
about 30 s per track, far apart from its previous request, so a per-process session cache
(SESSION_CACHE_SECONDS, 1 s) would have expired every time: measured with that cache off.
``back_to_back``: the same requests with the default cache. Since migration 026 the key
request reads its session in the release's round trip, so the modes should agree. A CPU
speed anchor (a fixed pure-Python loop, same run) makes runs on days of different machine
speed comparable."""
from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

from loadgen import quantile
from tests.support.contract_client import ContractClient, ephemeral_key
from tests.support.videos import register_user

KEYS = 16                # as the player asks once a run keeps playing (player.js KEY_RUN's last step)
WARMUP = 300
MODES = {"as_players_send_them": {"SESSION_CACHE_SECONDS": "0"}, "back_to_back": {}}


def key_endpoint_in_process(config: dict, gw: str, vid: str, conn, n: int = 500) -> dict:
    """The key endpoint in-process, in each of MODES: full WSGI time and the view's own
    Server-Timing, for requests of KEYS keys (as the player asks) on a live session (DPoP proof
    verified and recorded, session, pacing, wraps). The session's pace budget is reset in the
    database before every call (outside the timing) so no request is refused: one request of
    16 keys is 32 s of media, and four would pass the 120 s initial burst."""
    owner = register_user(gw, "p5")
    client = ContractClient(gw).login(owner["username"], owner["password"])
    s = client.open_session(vid)
    out = {"requests": n, "keys_per_request": KEYS, "modes": {}}
    for mode, settings in MODES.items():
        out["modes"][mode] = _measure({**config, **settings}, client, gw, s.id, conn, n)
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    out["cpu_anchor_ms"] = cpu_anchor_ms()
    return out


def cpu_anchor_ms() -> float:
    """The best of 5 runs of a fixed pure-Python loop (1M additions), in ms."""
    best = float("inf")
    for _ in range(5):
        t0, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def _measure(config: dict, client: ContractClient, gw: str, sid: str, conn, n: int) -> dict:
    from streaming_svc import create_app
    app = create_app({**config, "LOG_LEVEL": "WARNING"})
    path = f"/api/stream/sessions/{sid}/keys"
    box = {}

    def start_response(status, headers, exc_info=None):
        box["status"], box["headers"] = status, dict(headers)

    def request() -> dict:
        body = {"track": "video", "from": 0, "count": KEYS, "key_epoch": 0}
        headers = client.dpop_headers("POST", gw + path)
        env = EnvironBuilder(path=path, base_url=gw, method="POST", json=body, headers=headers).get_environ()
        env["wsgi.input"] = io.BytesIO(json.dumps(body).encode())
        return env

    def serve(env: dict) -> bytes:
        return b"".join(app(env, start_response))

    parts: dict[str, list[float]] = {}

    def call() -> tuple[float, float, float]:
        env = request()
        t0, c0 = time.perf_counter(), time.thread_time()
        body = serve(env)
        total, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
        assert box["status"].startswith("200"), box
        # A clip shorter than KEYS segments answers fewer keys, and the figure would not be
        # the player's request (the 8-s clip once made it 4 keys).
        if not parts:
            got = len(json.loads(body)["keys"])
            assert got == KEYS, f"the key response carried {got} keys, not {KEYS}: use a clip of >= {2 * KEYS} s"
        timing = dict(part.strip().split(";dur=") for part in box["headers"]["Server-Timing"].split(","))
        for name, ms in timing.items():
            parts.setdefault(name, []).append(float(ms))
        return total, float(timing["app"]), cpu

    cur = conn.cursor()
    samples = []
    # The first WARMUP warm caches and connections: with 50, whichever mode ran first was
    # 1.4-1.5x slower than the other (measured both ways round), so warming was not done.
    for i in range(n + WARMUP):
        cur.execute("UPDATE playback_sessions SET video_key_seconds = 0 WHERE id = %s", (sid,))
        if i >= WARMUP:
            samples.append(call())
        else:
            call()
    total, view = sorted(t for t, _, _ in samples), sorted(v for _, v, _ in samples)
    # The request's own CPU time in this thread (Flask, DPoP, wraps, the client side of the
    # MariaDB round trips): what the machine's other load cannot inflate, unlike wall time.
    cpu = sorted(c for _, _, c in samples)
    out = {"session_cache_seconds": float(app.config["SESSION_CACHE_SECONDS"]),
           "view_p50_ms": round(quantile(view, 0.5), 3), "view_p99_ms": round(quantile(view, 0.99), 3),
           "wsgi_p50_ms": round(quantile(total, 0.5), 3), "wsgi_p99_ms": round(quantile(total, 0.99), 3),
           "wsgi_cpu_p50_ms": round(quantile(cpu, 0.5), 3),
           # The view's parts (its Server-Timing): DPoP and token checks, media, the release, wraps.
           "view_parts_p50_ms": {name: round(quantile(sorted(v[-len(samples):]), 0.5), 3) for name, v in parts.items()}}
    # CPU time (thread_time), so that other load on the machine does not inflate it; the
    # waits on MariaDB are in the view's "release" part instead.
    prof, calls = cProfile.Profile(time.thread_time), 100
    for i in range(calls):                      # where the CPU time goes (self time per request, top functions)
        cur.execute("UPDATE playback_sessions SET video_key_seconds = 0 WHERE id = %s", (sid,))
        prof.runcall(serve, request())
    if os.environ.get("P5_PROFILE_DUMP"):      # a file prefix: the raw profile, for pstats' callers views
        prof.dump_stats(f"{os.environ['P5_PROFILE_DUMP']}.{config.get('SESSION_CACHE_SECONDS', 'default')}")
    st = pstats.Stats(prof).stats
    top = sorted(st.items(), key=lambda kv: -kv[1][2])[:15]
    out["profile_self_ms_per_request"] = {f"{Path(f).name}:{line}:{fn}": round(v[2] / calls * 1000, 3)
                                          for (f, line, fn), v in top}
    # Cumulative time per request of the heaviest calls (what each layer costs, callees included).
    heavy = sorted(st.items(), key=lambda kv: -kv[1][3])[:40]
    out["profile_cumulative_ms_per_request"] = {f"{Path(f).parent.name}/{Path(f).name}:{line}:{fn}": round(v[3] / calls * 1000, 3)
                                                for (f, line, fn), v in heavy}
    # Round trips to MariaDB per request: statements sent (cmd_query, which a commit also goes
    # through), the commits among them and pings (cmd_ping: a round trip too; the driver's cursor()
    # sends one, svcommon.db avoids it); primitive calls only, so nothing is counted twice.
    out["db_calls_per_request"] = {fn: round(sum(v[0] for (f, _, name), v in st.items()
                                                 if name == fn and "mysql" in f) / calls, 2)
                                   for fn in ("cmd_query", "commit", "cmd_ping")}
    return out


def api_cpu_in_process(config: dict, gw: str, vid: str, conn, n: int = 200) -> dict:
    """CPU per request of each kind a realtime viewer sends to streaming-svc while it plays
    (P7's server cost): session open (what each join of P7's ramp pays, with its first keys),
    manifest, video init segment, heartbeat and key request, in-process
    through WSGI on a live session; thread CPU time p50 and the heaviest calls (cProfile on
    thread CPU time, cumulative ms per request). The key requests ask for 16 keys, as players
    do, with the pace budget reset before each (outside the timing), as in
    key_endpoint_in_process."""
    from streaming_svc import create_app
    owner = register_user(gw, "api-cpu")
    client = ContractClient(gw).login(owner["username"], owner["password"])
    s = client.open_session(vid)
    reps = client.representations(s)
    init_path = next(r.init_url for r in reps if r.kind != "audio").replace(gw, "")
    manifest_path = s.manifest_url.replace(gw, "")
    app = create_app({**config, "LOG_LEVEL": "WARNING"})
    box = {}

    def start_response(status, headers, exc_info=None):
        box["status"] = status

    def environ(method: str, path: str, body: dict | None = None) -> dict:
        headers = client.dpop_headers(method, gw + path) if body is not None else {}
        env = EnvironBuilder(path=path, base_url=gw, method=method, json=body, headers=headers).get_environ()
        if body is not None:
            env["wsgi.input"] = io.BytesIO(json.dumps(body).encode())
        return env

    _, jwk = ephemeral_key()
    kinds = {
        "open": lambda i: environ("POST", "/api/stream/sessions", {"video_id": vid, "client_public_key": jwk}),
        "manifest": lambda i: environ("GET", manifest_path),
        "init": lambda i: environ("GET", init_path),
        "heartbeat": lambda i: environ("POST", f"/api/stream/sessions/{s.id}/heartbeat", {"position": 1.0}),
        "keys": lambda i: reset_budget() or environ("POST", f"/api/stream/sessions/{s.id}/keys",
                                                    {"track": "video", "from": 0, "count": KEYS, "key_epoch": s.key_epoch}),
    }
    cur = conn.cursor()

    def reset_budget() -> None:
        cur.execute("UPDATE playback_sessions SET video_key_seconds = 0 WHERE id = %s", (s.id,))

    out = {"requests_per_kind": n, "kinds": {}}
    for kind, make in kinds.items():
        cpu = []
        for i in range(n + 50):
            env = make(i)
            c0 = time.thread_time()
            b"".join(app(env, start_response))
            if i >= 50:
                cpu.append((time.thread_time() - c0) * 1000)
            assert box["status"][:3] in ("200", "201"), (kind, box)
        prof, calls = cProfile.Profile(time.thread_time), 50
        for i in range(calls):
            prof.runcall(lambda env: b"".join(app(env, start_response)), make(i))
        st = pstats.Stats(prof).stats
        heavy = sorted(st.items(), key=lambda kv: -kv[1][3])[:30]
        out["kinds"][kind] = {"cpu_p50_ms": round(quantile(sorted(cpu), 0.5), 3),
                              # MariaDB round trips per request (statements, commits included)
                              "db_statements_per_request": round(sum(v[0] for (f, _, fn), v in st.items()
                                                                     if fn == "cmd_query" and "mysql" in f) / calls, 2),
                              "profile_cumulative_ms_per_request": {
                                  f"{Path(f).parent.name}/{Path(f).name}:{line}:{fn}": round(v[3] / calls * 1000, 3)
                                  for (f, line, fn), v in heavy}}
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    out["cpu_anchor_ms"] = cpu_anchor_ms()
    return out
