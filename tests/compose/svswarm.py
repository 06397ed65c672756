"""A single-node Docker Swarm for the compose suite (check_50_swarm.py): init the swarm
when the engine is in none, deploy the stack generated from the compose file
(docker/stackfile.py), wait for it, scale, and remove everything it made.

`python tests/compose/svswarm.py down` removes the stack and, when this test initialized the
swarm (marker file), leaves it; tests/compose/run.sh calls it before and after the suite, so a
killed run leaves nothing behind."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "var" / "compose-ci" / "swarm"
MARKER = WORK / "swarm-initialized-by-test"      # holds the node id this test made a swarm of
NODE_LABELS = ("streamvault.data", "streamvault.gateway")   # docker/stackfile.py's placement labels


def docker(*args: str, check: bool = True, timeout: float = 300) -> str:
    res = subprocess.run(["docker", *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}")
    return res.stdout


@dataclass
class Task:
    container: str
    name: str
    health: str


class Swarm:
    def __init__(self, stack: str) -> None:
        self.stack = stack

    # ---- the swarm ----------------------------------------------------------------
    @staticmethod
    def join_or_init() -> bool:
        """Make this engine a swarm manager; True when this call initialized the swarm."""
        info = json.loads(docker("info", "--format", "{{json .Swarm}}"))
        if info.get("LocalNodeState") == "active":
            if not info.get("ControlAvailable"):
                raise RuntimeError("this engine is a swarm worker: deploy from a manager")
            return False
        # Loopback only: a one-node swarm needs no other machine to reach its control port.
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
        WORK.mkdir(parents=True, exist_ok=True)
        MARKER.write_text(json.loads(docker("info", "--format", "{{json .Swarm}}"))["NodeID"])
        return True

    @staticmethod
    def label_node() -> str:
        node = json.loads(docker("info", "--format", "{{json .Swarm}}"))["NodeID"]
        docker("node", "update", *[a for label in NODE_LABELS for a in ("--label-add", f"{label}=true")], node)
        return node

    # ---- the stack ----------------------------------------------------------------
    def deploy(self, stack_file: Path) -> str:
        # Images are local (one node, no registry): never ask a registry for digests.
        return docker("stack", "deploy", "--resolve-image", "never", "-c", str(stack_file), self.stack)

    def services(self) -> dict[str, str]:
        """service (without the stack prefix) -> replicas 'running/desired'."""
        out = docker("stack", "services", self.stack, "--format", "{{.Name}} {{.Replicas}}")
        return {line.split()[0].removeprefix(self.stack + "_"): line.split()[1] for line in out.splitlines()}

    def task_states(self, service: str) -> list[str]:
        out = docker("service", "ps", f"{self.stack}_{service}", "--format", "{{.CurrentState}}")
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def tasks(self, service: str) -> list[Task]:
        """The running containers of a service on this node, with their health."""
        ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.stack}_{service}").split()
        tasks = []
        for cid in ids:
            info = json.loads(docker("inspect", cid))[0]
            tasks.append(Task(cid, info["Name"].lstrip("/"), (info["State"].get("Health") or {}).get("Status", "none")))
        return sorted(tasks, key=lambda t: t.name)

    def wait_converged(self, one_shots: set[str], timeout: float = 420) -> float:
        """Until every service runs all its replicas, healthy, and each one-shot completed;
        seconds taken."""
        t0 = time.monotonic()
        while True:
            services = self.services()
            pending = []
            for name, replicas in services.items():
                if name in one_shots:
                    if "Complete" not in self.task_states(name):
                        pending.append(f"{name} (not complete)")
                    continue
                running, desired = replicas.split("/")[:2]
                healthy = [t for t in self.tasks(name) if t.health in ("healthy", "none")]
                if running != desired or len(healthy) < int(desired):
                    pending.append(f"{name} {replicas}")
            if services and not pending:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"stack {self.stack} not converged after {timeout:.0f}s: {pending}\n"
                                     + docker("stack", "ps", self.stack, "--no-trunc", check=False))
            time.sleep(2)

    def scale(self, service: str, replicas: int) -> None:
        docker("service", "scale", "--detach", f"{self.stack}_{service}={replicas}")

    def diagnostics(self) -> str:
        out = docker("stack", "ps", self.stack, "--no-trunc", check=False)
        for name in self.services() if self._exists() else {}:
            out += f"\n---- {name} (last 30 lines)\n" + docker("service", "logs", "--raw", "--tail", "30",
                                                             f"{self.stack}_{name}", check=False, timeout=60)
        return out

    def _exists(self) -> bool:
        return self.stack in docker("stack", "ls", "--format", "{{.Name}}", check=False).split()

    # ---- cleanup ------------------------------------------------------------------
    def remove(self, timeout: float = 120) -> None:
        """Remove the stack, wait for its containers to stop, then delete its volumes (and
        its networks: Swarm removes them once nothing uses them)."""
        label = f"label=com.docker.stack.namespace={self.stack}"
        if self._exists():
            docker("stack", "rm", self.stack, check=False)
        deadline = time.monotonic() + timeout
        while docker("ps", "-aq", "--filter", label, check=False).split() and time.monotonic() < deadline:
            time.sleep(1)
        for cid in docker("ps", "-aq", "--filter", label, check=False).split():
            docker("rm", "-f", cid, check=False)
        while docker("network", "ls", "-q", "--filter", label, check=False).split() and time.monotonic() < deadline:
            time.sleep(1)
        volumes = docker("volume", "ls", "-q", "--filter", label, check=False).split()
        if volumes:
            docker("volume", "rm", *volumes, check=False)

    @staticmethod
    def leave_if_ours() -> None:
        """Leave the swarm only if this test initialized it (the engine was in none before)."""
        if not MARKER.exists():
            return
        info = json.loads(docker("info", "--format", "{{json .Swarm}}", check=False) or "{}")
        if info.get("NodeID") == MARKER.read_text().strip():
            docker("swarm", "leave", "--force", check=False)
            # The bridge Swarm added for its containers' outbound traffic.
            docker("network", "rm", "docker_gwbridge", check=False)
        MARKER.unlink()


def gwbridge_address(container: str) -> str:
    """A Swarm task's address on docker_gwbridge, the bridge through which this host (and
    only it) reaches the task without any published port."""
    members = json.loads(docker("network", "inspect", "docker_gwbridge", "--format", "{{json .Containers}}"))
    full = docker("inspect", "--format", "{{.Id}}", container).strip()
    return members[full]["IPv4Address"].split("/")[0]


class LoopbackForward:
    """127.0.0.1:``port`` → ``target``, one thread pair per connection. The test's stack
    publishes no port (Swarm would publish on every interface: it has no host_ip); clients
    still use 127.0.0.1, the name the suite's TLS certificate is for."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return                              # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def down(stack: str) -> None:
    Swarm(stack).remove()
    Swarm.leave_if_ours()


if __name__ == "__main__":
    if sys.argv[1:2] != ["down"]:
        sys.exit("usage: svswarm.py down   (stack: SV_SWARM_STACK)")
    down(os.environ.get("SV_SWARM_STACK", "streamvault-ci-swarm"))
