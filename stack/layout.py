"""Ports and folders of one stack (``dev`` for ``make up``, ``test`` for pytest)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Service name -> (folder, python package, port) — ports as in seed 003.
SERVICES = {
    "auth": ("auth-svc", "auth_svc", 8000),
    "upload": ("upload-svc", "upload_svc", 3000),
    "file": ("file-svc", "file_svc", 4000),
    "streaming": ("streaming-svc", "streaming_svc", 3100),
    "watermark": ("watermark-svc", "watermark_svc", 5000),
}

# Every SeaweedFS listener pinned (gRPC too, which otherwise defaults to port+10000): 8330 + slot.
WEED_SLOTS = {"master": 0, "master_grpc": 1, "volume": 2, "s3": 3, "volume_grpc": 4,
              "filer": 5, "filer_grpc": 6, "s3_grpc": 7, "metrics": 8}


@dataclass(frozen=True)
class Stack:
    name: str
    offset: int          # added to every port, so a test stack never clashes with `make up`

    @property
    def var(self) -> Path:
        return ROOT / "var" / self.name

    def port(self, service: str) -> int:
        return SERVICES[service][2] + self.offset

    @property
    def gateway_port(self) -> int:
        return 8080 + self.offset

    @property
    def mariadb_port(self) -> int:
        return 3307 + self.offset

    @property
    def mariadb_socket(self) -> Path:
        return self.var / "mariadb.sock"

    def weed_port(self, role: str) -> int:
        return 8330 + self.offset + WEED_SLOTS[role]

    def listeners(self) -> dict[int, str]:
        """Every port this stack's programs listen on, and which program (stack.components.busy_ports)."""
        ports = {self.port(service): folder for service, (folder, _, _) in SERVICES.items()}
        ports |= {self.gateway_port: "the gateway (nginx)", self.mariadb_port: "MariaDB"}
        return ports | {self.weed_port(role): f"SeaweedFS ({role})" for role in WEED_SLOTS}

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.weed_port('s3')}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


def dev_stack(environ=os.environ) -> Stack:
    """`make up`'s stack: its ports as listed in README.md, or all moved by SV_PORT_OFFSET (another
    program holds one of them). Kept below Linux's ephemeral range (32768+), as test stacks are."""
    raw = environ.get("SV_PORT_OFFSET") or "0"
    if not raw.isdigit() or int(raw) + 8338 >= 32768:
        raise SystemExit(f"SV_PORT_OFFSET={raw!r}: a whole number of at most {32767 - 8338} (every port moves by it)")
    return Stack("dev", int(raw))


DEV = dev_stack()
# Ports a stack spans above its offset (3000: upload-svc .. 8338: SeaweedFS's last listener).
PORT_SPAN = 6000


def test_stack(environ=os.environ) -> Stack:
    """The test session's stack: ports +20000; SV_TEST_OFFSET/SV_TEST_STACK let two test runs
    share a machine. Each pytest-xdist worker (``make test`` runs two) gets a stack of its own,
    named after the worker, PORT_SPAN lower per worker: below Linux's ephemeral range (32768+),
    so a client socket can never hold a port a service is about to bind."""
    name, offset = environ.get("SV_TEST_STACK", "test"), int(environ.get("SV_TEST_OFFSET", "20000"))
    worker = environ.get("PYTEST_XDIST_WORKER", "")          # gw0, gw1, ...
    if worker.startswith("gw") and worker[2:].isdigit():
        name, offset = f"{name}-{worker}", offset - PORT_SPAN * int(worker[2:])
    return Stack(name, offset)


TEST = test_stack()
