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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from stack.layout import ROOT, SERVICES, Stack
from stack.secrets import load_or_create
from tests.support.media import ONE_RUNG, make_clip
from tests.support.videos import register_user
from tests.support.workload import Uploader

PROGRAMS = ("mariadb", "s3", *SERVICES, "worker", "gateway")   # supervisord's program names
# What every supervised test stack runs with: the fast x264 preset, and per-address throttles
# out of the way (all the suite's clients share 127.0.0.1).
FAST_AND_UNTHROTTLED = {"X264_PRESET": "ultrafast", "SIGNUP_MAX_PER_IP": "100000",
                        "LOGIN_MAX_FAILURES_IP": "100000", "PASSWORD_CHECKS_PER_MINUTE": "100000"}


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


def wait_ready(gw: str, owner: dict, video_id: str, bound: float) -> dict:
    """The owner's view of the video once it is ready (logging in again when the token
    lapses: a crash test outlives access tokens); fails at once if processing failed."""
    http = requests.Session()
    state = {"token": owner["access_token"], "video": None}

    def ready() -> bool:
        r = http.get(f"{gw}/api/videos/{video_id}", headers={"Authorization": f"Bearer {state['token']}"}, timeout=10)
        if r.status_code == 401:
            state["token"] = http.post(f"{gw}/api/auth/login", json={"username": owner["username"],
                                       "password": owner["password"]}, timeout=10).json()["access_token"]
            return False
        assert r.status_code == 200, r.text
        state["video"] = r.json()["video"]
        assert state["video"]["status"] != "failed", state["video"]
        return state["video"]["status"] == "ready"
    wait_until(ready, bound, f"video {video_id} ready", step=1)
    return state["video"]


@dataclass(frozen=True)
class FirstVideo:
    """A started supervised stack with an owner and one processed public video."""
    gw: str
    owner: dict                 # register_user's dict (username, password, access_token, ...)
    clip: bytes                 # the 4-s one-rung clip the video was made from
    video_id: str
    secrets: dict               # the stack's secrets.env (ADMIN_PASSWORD, DB_PASSWORD, ...)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.owner['access_token']}"}


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
        def ready(name: str) -> bool:
            if self.proc.poll() is not None:       # e.g. a port of the stack taken: said in up.out
                raise RuntimeError((self.stack.var / "up.out").read_text(errors="replace")[-2000:])
            return answers(f"{self.stack.url(name)}/readyz")
        for name in SERVICES:
            wait_until(lambda: ready(name), 120, f"{name} ready")
        wait_until(lambda: answers(f"{self.stack.gateway_url}/gateway/healthz"), 60, "gateway")

    @contextmanager
    def with_first_video(self, prefix: str, workdir: Path):
        """Start the stack, register ``prefix``'s owner and process one public video; stop
        the stack on the way out, whatever happened."""
        try:
            self.start()
            gw = self.stack.gateway_url
            owner = register_user(gw, prefix)
            clip = make_clip(workdir / "clip.mp4", seconds=4, size=ONE_RUNG).read_bytes()
            first = Uploader(gw, owner["username"], owner["password"]).post(clip, f"{prefix} first", visibility="public")
            wait_ready(gw, owner, first.video_id, 180)
            yield FirstVideo(gw, owner, clip, first.video_id, load_or_create(self.stack.var / "secrets.env"))
        finally:
            self.stop()

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
