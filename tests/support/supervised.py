"""A stack started exactly as `make up` starts it (`python -m stack up`: supervisord, gates,
gunicorn, a media worker, nginx) under a test stack's name and ports, for the reliability
tests that kill its processes and stop its dependencies (make test-reliability)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from stack.layout import ROOT, SERVICES, Stack

PROGRAMS = ("mariadb", "s3", *SERVICES, "worker", "gateway")   # supervisord's program names


def wait_until(check, bound: float, what: str, step: float = 0.2) -> float:
    """Seconds until ``check()`` holds; fails after ``bound``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound, f"{what}: not within {bound} s"
        time.sleep(step)
    return time.monotonic() - started


def answers(url: str, status: int = 200, timeout: float = 10, **kw) -> bool:
    try:
        return requests.get(url, timeout=timeout, **kw).status_code == status
    except requests.RequestException:
        return False


class SupervisedStack:
    """``stack``: its name and port offset; ``tuning``: settings added to every process's
    environment (short S3 timeouts, the fast x264 preset, relaxed per-address throttles)."""

    def __init__(self, stack: Stack, tuning: dict[str, str]) -> None:
        self.stack, self.tuning = stack, tuning
        self.proc: subprocess.Popen | None = None
        self._log = None

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
        return {**env, **self.tuning, "SV_TEST_STACK": self.stack.name, "SV_TEST_OFFSET": str(self.stack.offset)}

    def ctl(self, *args: str) -> str:
        out = subprocess.run([str(Path(sys.executable).parent / "supervisorctl"), "-c",
                              str(self.stack.var / "supervisord.conf"), *args],
                             capture_output=True, text=True, timeout=30)
        return out.stdout

    def pid_of(self, program: str) -> int:
        return int(self.ctl("pid", program).strip() or 0)

    def start(self) -> None:
        shutil.rmtree(self.stack.var, ignore_errors=True)
        self.stack.var.mkdir(parents=True)
        self._log = open(self.stack.var / "up.out", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "stack", "up", "--stack", "test", "--no-demo"], cwd=ROOT,
                                     env=self.env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for name in SERVICES:
            wait_until(lambda: answers(f"{self.stack.url(name)}/readyz"), 120, f"{name} ready")
        wait_until(lambda: answers(f"{self.stack.gateway_url}/gateway/healthz"), 60, "gateway")

    def down(self) -> None:
        subprocess.run([sys.executable, "-m", "stack", "down", "--stack", "test"], cwd=ROOT, env=self.env(),
                       timeout=150, check=True)

    def stop(self) -> None:
        """Stop everything (a frozen dependency is thawed first); safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            for name in ("mariadb", "s3"):     # never leave a frozen process behind
                pid = self.pid_of(name)
                if pid:
                    os.kill(pid, signal.SIGCONT)
            subprocess.run([sys.executable, "-m", "stack", "down", "--stack", "test"], cwd=ROOT, env=self.env(),
                           timeout=150)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
