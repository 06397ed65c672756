"""Phase 5 — beyond one machine: the same compose file on Docker Swarm (`docker stack
deploy`) on a single-node swarm, on the same engine as the compose project (its own stack
name, data, networks and ports; the project is stopped first, this being the last phase).
The deployed stack publishes nothing (Swarm would listen on every interface): clients reach
its gateway through loopback forwarders to the task's docker_gwbridge address. The stack file is generated from docker-compose.yml by
docker/stackfile.py, exactly as docs/operations.md "Docker Swarm" tells an operator to.
Every service comes up healthy, the smoke passes through the stack's gateway (accounts,
upload, processing, playback), and streaming-svc scaled to 2 tasks serves from both.
The stack, its volumes and, when this test made it, the swarm are removed at the end."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from client import Gateway, User
from media import make_clip, play_lowest, upload_ready
from svcompose import ROOT, Compose
from svswarm import WORK, LoopbackForward, Swarm, gwbridge_address

pytestmark = pytest.mark.slow

STACK = os.environ.get("SV_SWARM_STACK", "streamvault-ci-swarm")
HTTP_PORT = int(os.environ.get("SV_SWARM_GATEWAY_PORT", "8180"))
TLS_PORT = int(os.environ.get("SV_SWARM_GATEWAY_TLS_PORT", "8543"))
ORIGIN = f"https://127.0.0.1:{TLS_PORT}"
ONE_SHOTS = {"migrate"}
SCALED = "streaming-svc"


@pytest.fixture(scope="module")
def stack_file(compose: Compose) -> dict:
    """The compose configuration with this stack's ports and origin, through
    docker/stackfile.py: the compose form, the stack form and what the generator dropped."""
    env = {**os.environ, "GATEWAY_PORT": str(HTTP_PORT), "GATEWAY_TLS_PORT": str(TLS_PORT), "PUBLIC_URL": ORIGIN}
    config = subprocess.run(compose.argv("config", "--format", "json"), env=env, cwd=ROOT, check=True,
                            text=True, stdout=subprocess.PIPE, timeout=120).stdout
    gen = subprocess.run([sys.executable, "docker/stackfile.py"], input=config, cwd=ROOT, check=True,
                         text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    WORK.mkdir(parents=True, exist_ok=True)
    stack = json.loads(gen.stdout)
    # Deployed here without the gateway's published ports: Swarm publishes on every interface
    # (it has no host_ip), and servers a test starts listen on loopback only. The test reaches
    # the gateway through loopback forwarders to its task instead (the `swarm` fixture).
    deployed = json.loads(gen.stdout)
    targets = {p["published"]: p["target"] for p in deployed["services"]["gateway"].pop("ports")}
    path = WORK / "stack.json"
    path.write_text(json.dumps(deployed, indent=1))
    return {"path": path, "compose": json.loads(config), "stack": stack, "notes": gen.stderr, "targets": targets}


@pytest.fixture(scope="module")
def swarm(stack_file: dict, compose: Compose):
    for port in (HTTP_PORT, TLS_PORT):
        probe = subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True)
        assert probe.returncode != 0, f"port {port} is taken: set SV_SWARM_GATEWAY_PORT/SV_SWARM_GATEWAY_TLS_PORT"
    # The last phase: the compose project (kept for run.sh's `down -v`) is stopped so that
    # its containers' healthchecks do not share the CPUs with the stack's start-up.
    compose.run("stop", timeout=300)
    s = Swarm(STACK)
    s.remove()                                    # what a killed earlier run may have left
    made = Swarm.join_or_init()
    try:
        node = Swarm.label_node()
        print(f"\n{'initialized a single-node swarm' if made else 'using the existing swarm'} "
              f"(node {node[:12]}, labels streamvault.data, streamvault.gateway)", flush=True)
        s.deploy(stack_file["path"])
        try:
            took = s.wait_converged(ONE_SHOTS)
        except AssertionError:
            print(s.diagnostics(), flush=True)
            raise
        print(f"`docker stack deploy` {STACK}: every service healthy in {took:.1f}s", flush=True)
        address = gwbridge_address(s.tasks("gateway")[0].container)
        forwards = [LoopbackForward(port, (address, target)) for port, target in stack_file["targets"].items()]
        try:
            yield s
        finally:
            for f in forwards:
                f.close()
    finally:
        t0 = time.monotonic()
        s.remove()
        Swarm.leave_if_ours()
        print(f"\nstack removed{' and swarm left' if made else ''} in {time.monotonic() - t0:.1f}s", flush=True)


@pytest.fixture(scope="module")
def swarm_gateway(swarm: Swarm) -> Gateway:
    return Gateway(ORIGIN)


@pytest.fixture(scope="module")
def swarm_user(swarm_gateway: Gateway) -> User:
    return swarm_gateway.signed_up("swarm")


@pytest.fixture(scope="module")
def swarm_video(swarm_gateway: Gateway, swarm_user: User, tmp_path_factory) -> dict:
    clip = make_clip(tmp_path_factory.mktemp("swarm") / "clip.mp4", seconds=4, size="640x360")
    return upload_ready(swarm_gateway, swarm_user, clip, "swarm smoke")


def test_stack_file_is_derived_from_compose(stack_file: dict):
    compose, stack = stack_file["compose"], stack_file["stack"]
    assert set(stack["services"]) == set(compose["services"]) and "fsck" not in stack["services"]
    for name, svc in stack["services"].items():
        assert not {"build", "depends_on", "restart", "security_opt", "tmpfs"} & set(svc), name
        assert svc["deploy"]["endpoint_mode"] == "dnsrr", name
        assert svc["image"] == compose["services"][name]["image"]
    for name in ("mariadb", "s3"):
        assert stack["services"][name]["deploy"]["placement"]["constraints"] == ["node.labels.streamvault.data == true"]
    gw = stack["services"]["gateway"]
    assert gw["deploy"]["mode"] == "global"
    assert sorted((p["published"], p["mode"]) for p in gw["ports"]) == [(HTTP_PORT, "host"), (TLS_PORT, "host")]
    assert [s for s in stack["services"] if "ports" in s and s != "gateway"] == []
    assert stack["networks"]["backend"] == {"driver": "overlay", "internal": True}
    # Swarm replaces an unhealthy task: it must fail for a minute first (3 s interval here).
    assert stack["services"]["auth-svc"]["healthcheck"]["retries"] == 20
    assert set(stack["secrets"]) == set(compose["secrets"])
    # What Swarm cannot do as compose does is said, not silently lost.
    assert "security_opt dropped" in stack_file["notes"] and "Swarm has no host_ip" in stack_file["notes"]


def test_every_service_healthy(swarm: Swarm, stack_file: dict):
    services = swarm.services()
    assert set(services) == set(stack_file["stack"]["services"])
    for name, replicas in services.items():
        if name in ONE_SHOTS:
            assert "Complete" in swarm.task_states(name), (name, swarm.task_states(name))
            continue
        running, desired = replicas.split("/")[:2]
        assert running == desired == "1", (name, replicas)
        assert [t.health for t in swarm.tasks(name)] == ["healthy"], (name, swarm.tasks(name))


def test_smoke_accounts(swarm_gateway: Gateway, swarm_user: User):
    g = swarm_gateway
    r = g.get("/gateway/healthz")
    assert r.status_code == 200 and r.text.strip() == "ok"
    r = Gateway(f"http://127.0.0.1:{HTTP_PORT}").get("/auth/login")
    assert r.status_code == 308 and r.headers["Location"] == f"{ORIGIN}/auth/login"
    assert g.register(swarm_user).status_code == 409
    assert g.login(swarm_user).status_code == 200
    r = g.profile(swarm_user)
    assert r.status_code == 200 and r.json()["username"] == swarm_user.username
    keys = g.get("/.well-known/jwks.json").json()["keys"]
    header = jwt.get_unverified_header(swarm_user.access_token)
    key = next(k for k in keys if k["kid"] == header["kid"])
    jwt.decode(swarm_user.access_token, jwt.PyJWK(key).key, algorithms=[header["alg"]],
               audience="streamvault", issuer="streamvault-auth")
    assert g.get("/metrics").status_code == 404


def test_upload_process_play(swarm_gateway: Gateway, swarm_user: User, swarm_video: dict, tmp_path: Path):
    played = play_lowest(swarm_gateway.base, swarm_user, swarm_video["id"], tmp_path / "played.mp4")
    played.client.end(played.session)
    assert any(st["codec_type"] == "video" for st in played.info["streams"])
    assert float(played.info["format"]["duration"]) > 3


def test_scaled_service_serves_from_every_task(swarm: Swarm, swarm_gateway: Gateway, swarm_user: User,
                                               swarm_video: dict, tmp_path: Path):
    swarm.scale(SCALED, 2)
    took = swarm.wait_converged(ONE_SHOTS, timeout=180)
    tasks = swarm.tasks(SCALED)
    print(f"\n`docker service scale {STACK}_{SCALED}=2`: both tasks healthy in {took:.1f}s", flush=True)
    assert len(tasks) == 2 and all(t.health == "healthy" for t in tasks), tasks
    # The gateway re-resolves the service name (dnsrr: every task's address) within its DNS
    # TTL; probe until both tasks have answered, every probe answered by streaming-svc.
    run, sent, hits = secrets.token_hex(6), 0, {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for _ in range(10):
            r = swarm_gateway.get(f"/swarm-probe/{run}/{sent}")
            assert r.status_code == 404, (r.status_code, r.text[:300])
            sent += 1
        hits = {t.name: sum(f"/swarm-probe/{run}/" in line and '"logger": "streaming-svc.access"' in line
                            for line in Compose.logs(t.container).splitlines()) for t in tasks}
        if all(hits.values()):
            break
        time.sleep(1)
    print(f"{sent} probes; per task (its own access log): {hits}", flush=True)
    assert all(hits.values()), f"a task got no request: {hits}"
    # Sessions live in the database: playback works across both tasks.
    played = play_lowest(swarm_gateway.base, swarm_user, swarm_video["id"], tmp_path / "scaled.mp4")
    played.client.end(played.session)
    assert float(played.info["format"]["duration"]) > 3
