"""Phase 2 — scale streaming-svc to 3 replicas without restarting the gateway; requests
land on every replica; stopping one replica under load does not fail requests."""
from __future__ import annotations

import secrets
import subprocess
import threading
import time

import pytest

from client import Gateway, User
from media import ContractClient
from support.contract_client import _index_of
from svcompose import Compose

REPLICAS = 3


@pytest.fixture(scope="module")
def scaled(compose: Compose):
    gw_before = compose.containers("gateway")
    took = compose.up("--scale", f"streaming-svc={REPLICAS}", "--no-recreate", "streaming-svc")
    print(f"\nscaled streaming-svc to {REPLICAS} replicas (healthy) in {took:.1f}s", flush=True)
    gw_after = compose.containers("gateway")
    assert [c["id"] for c in gw_before] == [c["id"] for c in gw_after], "gateway must not be restarted"
    yield compose.containers("streaming-svc")


def test_three_healthy_replicas(scaled):
    assert len(scaled) == REPLICAS
    assert all(c["health"] == "healthy" for c in scaled), scaled


def test_requests_land_on_every_replica(compose: Compose, gateway: Gateway, scaled):
    time.sleep(6)  # > GATEWAY_DNS_TTL: the gateway has re-resolved streaming-svc by now
    run = secrets.token_hex(6)
    n = 60
    for i in range(n):
        # An unknown path under the viewer app: 404 from streaming-svc, logged with its path.
        r = gateway.get(f"/compose-probe/{run}/{i}")
        assert r.status_code == 404, (r.status_code, r.text[:300])
    hits = {}
    for c in scaled:
        hits[c["name"]] = sum(1 for line in compose.logs(c["id"]).splitlines()
                              if f"/compose-probe/{run}/" in line and '"logger": "streaming-svc.access"' in line)
    print("\nrequests per replica (from each replica's own access log): "
          + ", ".join(f"{k}={v}" for k, v in hits.items()), flush=True)
    # The gateway's access log names the upstream address of each request too.
    # The gateway's log is buffered (flush=2s, set for /media/, applies to the whole file):
    # wait until every probe line is in.
    gw = compose.containers("gateway")[0]
    deadline = time.monotonic() + 15
    while True:
        ups = {}
        for line in compose.logs(gw["id"]).splitlines():
            if f"/compose-probe/{run}/" in line and '"upstream":"' in line:
                addr = line.split('"upstream":"', 1)[1].split('"', 1)[0]
                ups[addr] = ups.get(addr, 0) + 1
        if sum(ups.values()) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print("gateway upstream addresses: " + ", ".join(f"{k}={v}" for k, v in sorted(ups.items())), flush=True)
    assert sum(hits.values()) == n
    assert all(v > 0 for v in hits.values()), f"a replica got no request: {hits}"
    assert len(ups) == REPLICAS, f"the gateway did not spread over {REPLICAS} upstreams: {ups}"


def test_stopping_a_replica_mid_stream(compose: Compose, gateway: Gateway, user: User, ready_video: dict, scaled):
    """Clients keep calling while one replica is stopped: a player fetching and decrypting
    segments of an open session and its per-session init segment, and plain page requests. Every request still succeeds
    (the gateway retries a refused connection on another replica; sessions live in the
    database, so any replica serves them)."""
    victim = scaled[-1]
    c = ContractClient(gateway.base).login(user.username, user.password)
    s = c.open_session(ready_video["id"])
    reps = [r for r in c.representations(s) if r.kind == "video"]
    rep = min(reps, key=lambda r: r.height or 0)
    results: list[tuple[str, int, float]] = []
    segments = [0]
    stop = threading.Event()

    def pages():
        g = Gateway(gateway.base)
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                code = g.get("/healthz", timeout=20).status_code
            except Exception:  # noqa: BLE001 - counted as a failure
                code = 0
            results.append(("page", code, time.monotonic() - t0))
            time.sleep(0.05)

    def player():
        # Segments come from the gateway's cache after the first pass, so each step also
        # fetches the session's tagged init segment: that one is served by a streaming
        # replica every time (no-store), which is what stopping a replica must not break.
        while not stop.is_set():
            for i, url in enumerate(rep.segment_urls):
                t0 = time.monotonic()
                try:
                    c.fetch(s, url, rep.id, _index_of(url, i))
                    code = 200
                    segments[0] += 1
                except Exception as exc:  # noqa: BLE001 - counted as a failure
                    code = getattr(getattr(exc, "response", None), "status_code", 0) or -1
                results.append(("segment", code, time.monotonic() - t0))
                t0 = time.monotonic()
                try:
                    code = c.http.get(rep.init_url, timeout=20).status_code
                except Exception:  # noqa: BLE001 - counted as a failure
                    code = 0
                results.append(("init", code, time.monotonic() - t0))

    workers = [threading.Thread(target=pages) for _ in range(2)] + [threading.Thread(target=player)]
    for w in workers:
        w.start()
    time.sleep(2)
    before = len(results)
    subprocess.run(["docker", "stop", "-t", "15", victim["id"]], check=True, stdout=subprocess.DEVNULL)
    time.sleep(8)  # past the gateway's DNS TTL: the stopped replica has left the pool
    stop.set()
    for w in workers:
        w.join(60)
    c.heartbeat(s, 1.0)  # the session itself is still alive on the remaining replicas
    c.end(s)
    bad = [r for r in results if r[1] != 200]
    slowest = max(t for _, _, t in results)
    print(f"\nstopped {victim['name']} mid-stream: {len(results)} requests ({len(results) - before} during/after "
          f"the stop), {segments[0]} segments decrypted, {len(bad)} failed, slowest {slowest:.2f}s", flush=True)
    assert segments[0] > 0
    assert not bad, f"requests failed while a replica stopped: {bad[:10]}"
    # Bring the replica set back for the later phases.
    compose.up("--scale", f"streaming-svc={REPLICAS}", "--no-recreate", "streaming-svc")


def test_scale_workers(compose: Compose):
    took = compose.up("--scale", "watermark-worker=2", "--no-recreate", "watermark-worker")
    workers = compose.containers("watermark-worker")
    print(f"\nscaled watermark-worker to 2 in {took:.1f}s: " + ", ".join(c["name"] for c in workers), flush=True)
    assert len(workers) == 2 and all(c["health"] == "healthy" for c in workers), workers
