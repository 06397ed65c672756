"""Turn the compose configuration into a file `docker stack deploy` runs (Docker Swarm).

docker-compose.yml stays the one description of the suite; this derives the Swarm form
from its resolved configuration (variables, `<<:` merges and the TLS overlay applied):

  docker compose -f docker-compose.yml -f docker-compose.tls.yml config --format json \\
    | python3 docker/stackfile.py > stack.json
  docker stack deploy --resolve-image never -c stack.json streamvault

(JSON is YAML, so `-c stack.json` reads it.) What changes, and why (docs/operations.md
"Docker Swarm"):
- Swarm neither builds nor orders start-up: `build` and `depends_on` are dropped (services
  retry their dependencies, and a task whose healthcheck keeps failing is replaced); `restart`
  becomes `deploy.restart_policy` (`migrate`, a one-shot, restarts only on failure).
- Every service is `endpoint_mode: dnsrr`: its name resolves to every task's address, as
  under compose, so the gateway's nginx spreads requests over the replicas and fails over
  between them itself (a virtual IP would hide the replicas, and needs IPVS in the kernel).
  With dnsrr the gateway publishes in `mode: host` (no routing mesh): it runs once per node
  labelled GATEWAY_LABEL (`deploy.mode: global`) and listens on that node's port.
- Services that keep data in a named volume (a node-local volume under Swarm) are pinned to
  the node labelled DATA_LABEL, so they find their data again after a restart.
- Healthchecks get retries covering UNHEALTHY_AFTER_SECONDS: Swarm replaces an unhealthy
  task, where compose only reports it.
- Keys Swarm does not implement are dropped and named on stderr: `security_opt`, a port's
  `host_ip` (Swarm publishes on every interface), tmpfs options. `tmpfs` paths become tmpfs
  mounts, owned by root with the mode of the image's directory (`docker stack deploy` passes
  no tmpfs mode): an image whose user writes there makes that directory 1777, as /tmp is
  (gateway/Dockerfile does for /var/lib/gateway).
- Names are left to the stack (networks, volumes and secrets become `<stack>_<name>`);
  networks are overlay networks (`backend` stays internal).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys

DATA_LABEL = "streamvault.data"
GATEWAY_LABEL = "streamvault.gateway"
GATEWAY = "gateway"
# Compose only reports an unhealthy container; Swarm replaces the task. Each healthcheck gets
# enough retries to fail for this long first, so a slow moment or a short outage of a
# dependency (every /readyz fails while MariaDB is down) does not restart the services.
UNHEALTHY_AFTER_SECONDS = 60
DROPPED = ("build", "depends_on", "expose", "restart", "security_opt", "tmpfs", "container_name",
           "profiles", "pull_policy")


def _seconds(duration: str) -> float:
    """A Go duration as `docker compose config` writes it ("3s", "1m0s", "500ms")."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(h|ms|us|ns|m|s)", duration))


def _service(name: str, svc: dict, data_volumes: set[str], notes: list[str]) -> dict:
    out = {k: v for k, v in svc.items() if k not in DROPPED and v is not None}
    check = out.get("healthcheck")
    if check and not check.get("disable"):
        interval = _seconds(check.get("interval", "30s")) or 30      # Docker's default interval
        out["healthcheck"] = {**check, "retries": max(check.get("retries", 3),
                                                      math.ceil(UNHEALTHY_AFTER_SECONDS / interval))}
    mounts = list(out.get("volumes") or [])
    for entry in svc.get("tmpfs") or []:
        path, _, options = entry.partition(":")
        if options:
            notes.append(f"{name}: tmpfs {path} options '{options}' dropped "
                         "(a Swarm tmpfs is root's, with the mode of the image's directory)")
        mounts.append({"type": "tmpfs", "target": path})
    if mounts:
        out["volumes"] = [{k: v for k, v in m.items() if v not in ({}, None)} for m in mounts]
    ports = []
    for port in svc.get("ports") or []:
        if port.get("host_ip"):
            notes.append(f"{name}: port {port['published']} published on every interface, "
                         f"not only {port['host_ip']} (Swarm has no host_ip)")
        ports.append({"target": int(port["target"]), "published": int(port["published"]),
                      "protocol": port.get("protocol", "tcp"), "mode": "host"})
    if ports:
        out["ports"] = ports

    one_shot = svc.get("restart") == "no"
    deploy: dict = {
        "endpoint_mode": "dnsrr",
        "restart_policy": ({"condition": "on-failure", "delay": "5s", "max_attempts": 30} if one_shot
                           else {"condition": "any", "delay": "5s"}),
    }
    if name == GATEWAY:
        deploy["mode"] = "global"
        deploy["placement"] = {"constraints": [f"node.labels.{GATEWAY_LABEL} == true"]}
    elif data_volumes & {m.get("source") for m in mounts if m.get("type") == "volume"}:
        deploy["placement"] = {"constraints": [f"node.labels.{DATA_LABEL} == true"]}
    else:
        # Stateless: scale with `docker service scale <stack>_<name>=N`; updates start the
        # new task before stopping the old one.
        deploy["update_config"] = {"order": "start-first", "failure_action": "rollback"}
    out["deploy"] = deploy
    return out


def to_stack(config: dict, data_volumes: set[str]) -> tuple[dict, list[str]]:
    """The compose configuration (`docker compose config --format json`) as a stack file,
    and a note for everything Swarm cannot do as compose did."""
    notes: list[str] = []
    hardened = sorted(name for name, svc in config["services"].items() if svc.get("security_opt"))
    if hardened:
        notes.append(f"security_opt dropped (not in Swarm's service spec): {', '.join(hardened)}")
    services = {name: _service(name, svc, data_volumes, notes)
                for name, svc in sorted(config["services"].items())}
    networks = {}
    for name, net in (config.get("networks") or {}).items():
        networks[name] = {"driver": "overlay", **({"internal": True} if net.get("internal") else {})}
    volumes = {name: {k: v for k, v in (vol or {}).items() if k in ("driver", "driver_opts", "external")}
               for name, vol in (config.get("volumes") or {}).items()}
    secrets = {name: {k: v for k, v in sec.items() if k in ("file", "external")}
               for name, sec in (config.get("secrets") or {}).items()}
    stack = {"version": "3.8", "services": services, "networks": networks, "volumes": volumes,
             "secrets": secrets}
    return stack, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-volumes", default="mariadb-data,s3-data",
                        help=f"volumes whose services are pinned to the node labelled {DATA_LABEL}=true")
    args = parser.parse_args(argv)
    stack, notes = to_stack(json.load(sys.stdin), set(args.data_volumes.split(",")))
    for note in notes:
        print(f"stackfile: {note}", file=sys.stderr)
    json.dump(stack, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
