"""Thin wrapper over `docker compose` for the smoke suite (project, files and env file
come from the environment that tests/compose/run.sh sets)."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Compose:
    def __init__(self) -> None:
        self.cmd = shlex.split(os.environ.get("SV_COMPOSE", "docker compose"))
        self.project = os.environ.get("COMPOSE_PROJECT_NAME", "streamvault-ci")
        self.env_file = os.environ.get("SV_COMPOSE_ENV_FILE", str(ROOT / "tests/compose/ci.env"))
        self.files = os.environ.get("SV_COMPOSE_FILES", "docker-compose.yml").split()

    def argv(self, *args: str) -> list[str]:
        files = [arg for name in self.files for arg in ("-f", str(ROOT / name))]
        return [*self.cmd, "--project-directory", str(ROOT), *files,
                "--env-file", self.env_file, "-p", self.project, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        print("$ docker compose " + " ".join(args), flush=True)
        return subprocess.run(self.argv(*args), cwd=ROOT, check=check, timeout=timeout, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def up(self, *args: str, timeout: int = 600) -> float:
        """`up -d --wait` (returns when every started service is healthy); seconds taken."""
        t0 = time.monotonic()
        res = self.run("up", "-d", "--wait", "--wait-timeout", str(timeout), *args, check=False,
                       timeout=timeout + 120)
        if res.returncode != 0:
            raise AssertionError(f"compose up failed ({res.returncode}):\n{res.stdout[-4000:]}\n"
                                 + self.run("ps", "-a", check=False).stdout)
        return time.monotonic() - t0

    def containers(self, service: str) -> list[dict]:
        """Running containers of a service: [{id, name, ip, health}] sorted by name."""
        ids = self.run("ps", "-q", service).stdout.split()
        out = []
        for cid in ids:
            info = json.loads(subprocess.run(["docker", "inspect", cid], check=True, text=True,
                                             stdout=subprocess.PIPE).stdout)[0]
            nets = info["NetworkSettings"]["Networks"]
            out.append({"id": cid, "name": info["Name"].lstrip("/"),
                        "ips": sorted(n["IPAddress"] for n in nets.values() if n.get("IPAddress")),
                        "health": (info["State"].get("Health") or {}).get("Status", "none")})
        return sorted(out, key=lambda c: c["name"])

    @staticmethod
    def logs(container_id: str, since: str | None = None) -> str:
        argv = ["docker", "logs", container_id] + (["--since", since] if since else [])
        return subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
