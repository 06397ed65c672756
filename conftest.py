"""Session fixtures shared by every test: a private MariaDB and SeaweedFS S3 (started with
the same launcher code as `make up`, on ports +20000 so a running `make up` is untouched)
and, for end-to-end tests, every service under gunicorn behind the nginx gateway."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from stack import components, dbsetup  # noqa: E402
from stack.environment import for_service, gunicorn_command, stack_env  # noqa: E402
from stack.layout import SERVICES, TEST  # noqa: E402
from stack.secrets import load_or_create  # noqa: E402
from tests.support.browser import SCREENSHOTS  # noqa: E402

# Stack-wide fixtures (worker_app, stores, db, mdb, owner_id) for tests/ and bench/, defined
# once; test modules import only plain helpers, never fixtures.
pytest_plugins = ["tests.support.videos", "tests.support.hostile_media"]


def _alive(pid: int) -> bool:
    """Running (a zombie whose parent is gone counts as stopped)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line for line in f)
    except OSError:
        return False


class Processes:
    """Children we started, stopped by PID (never anything else on the machine). Each PID is
    also written to ``<stack>/pids/`` so a run that was killed before its teardown can have
    its leftovers stopped by the next run (checked against the recorded command line, so a
    reused PID of someone else's process is never touched)."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.piddir = logdir.parent / "pids"
        self.piddir.mkdir(exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen]] = []

    @staticmethod
    def stop_leftovers(piddir: Path) -> None:
        killed = []
        for pidfile in sorted(piddir.glob("*.pid")) if piddir.is_dir() else []:
            pid_text, _, cmdline = pidfile.read_text().partition("\n")
            try:
                pid = int(pid_text)
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    alive_cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                # nginx retitles its master ("nginx: master process " + the command line)
                if alive_cmd == cmdline.strip() or alive_cmd.endswith(" " + cmdline.strip()):
                    os.killpg(pid, 15)
                    killed.append(pid)
            except (ValueError, OSError):
                continue
        deadline = time.monotonic() + 15
        while killed and time.monotonic() < deadline:
            killed = [p for p in killed if _alive(p)]
            time.sleep(0.2)
        for pid in killed:  # still there after 15 s: no more patience
            try:
                os.killpg(pid, 9)
            except OSError:
                pass

    def start(self, name: str, argv: list[str], env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
        with open(self.logdir / f"{name}.log", "ab") as log:  # the child keeps its own handle
            proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        (self.piddir / f"{name}.pid").write_text(f"{proc.pid}\n{' '.join(argv)}")
        return proc

    def stop(self, name: str | None = None, grace: float = 15) -> None:
        for n, proc in reversed(list(self.procs)):
            if name is not None and n != name:
                continue
            components.stop_child(proc, grace)
            self.procs.remove((n, proc))

    def kill(self, name: str) -> None:
        """SIGKILL to the whole process group of ``name`` (a gunicorn arbiter and its workers)."""
        for n, proc in list(self.procs):
            if n == name:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                self.procs.remove((n, proc))


def pytest_sessionstart(session):
    """The screenshots of this run only (var/test/screenshots/, for a person to look at): wiped
    once, by the run's controller, since xdist workers' stacks live in folders of their own.
    SV_KEEP_SCREENSHOTS=1 (the suites CI runs after `make test`) adds to them instead, so
    that `make test`'s are still there to look at after the whole CI run."""
    if not hasattr(session.config, "workerinput") and not os.environ.get("SV_KEEP_SCREENSHOTS"):
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)


def start_storage(stack) -> tuple[dict, Processes]:
    """A fresh MariaDB + SeaweedFS of ``stack`` (its var folder wiped first: idempotent),
    started; its secrets and the children (stop them with ``procs.stop``)."""
    Processes.stop_leftovers(stack.var / "pids")
    if busy := components.busy_ports(stack):
        raise RuntimeError(f"test stack {stack.name} cannot start: {'; '.join(busy)} (SV_TEST_OFFSET moves its ports)")
    if stack.var.exists():
        shutil.rmtree(stack.var)
    (stack.var / "logs").mkdir(parents=True)
    secrets = load_or_create(stack.var / "secrets.env")
    procs = Processes(stack.var / "logs")
    components.mariadb_prepare(stack)
    components.seaweed_prepare(stack, secrets)
    procs.start("mariadb", components.mariadb_command(stack))
    procs.start("seaweed", components.seaweed_command(stack))
    return secrets, procs


@pytest.fixture
def scratch_db(infra):
    """An empty database of its own on the session's MariaDB, dropped afterwards: the root
    connection arguments for it (``database`` is its name)."""
    import uuid
    import mysql.connector
    name = "scratch_" + uuid.uuid4().hex[:8]
    kw = dbsetup.root_kwargs(infra["stack"])
    conn = mysql.connector.connect(**kw)
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.close()
    yield dict(kw, database=name)
    conn = mysql.connector.connect(**kw)
    conn.cursor().execute(f"DROP DATABASE `{name}`")
    conn.close()


@pytest.fixture(scope="session")
def storage_starter():
    """``start_storage``, for a test that needs a second, empty stack (test_backup_restore)."""
    return start_storage


@pytest.fixture(scope="session")
def infra():
    """Fresh MariaDB + SeaweedFS for this test session (var/test is wiped first: idempotent)."""
    stack = TEST
    secrets, procs = start_storage(stack)
    try:
        dbsetup.setup(stack, secrets["DB_PASSWORD"], out=lambda m: None)
        deadline = time.monotonic() + 60
        while True:  # S3 answers 403 to anonymous requests once it is up
            try:
                requests.get(stack.s3_endpoint, timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError("SeaweedFS S3 did not come up")
                time.sleep(0.3)
        # X264_PRESET: the suite processes dozens of clips (in-process workers and the stack's);
        # ultrafast takes about 40 % of the default preset's time. Encoding quality is not what
        # these tests check: the watermark's robustness to re-encoding is tested offline with
        # the default preset (watermark-svc/tests/test_forensics_trace.py) and in bench/.
        env = {**stack_env(stack, secrets), "X264_PRESET": "ultrafast"}
        yield {"stack": stack, "secrets": secrets, "procs": procs, "env": env}
    finally:
        # SeaweedFS takes over 15 s to honour SIGTERM; this session's data is wiped by the
        # next one anyway, so it gets 2 s (MariaDB and the rest stop in well under one).
        procs.stop(grace=2)


@pytest.fixture(scope="session")
def service_config(infra):
    """test_config values for create_app() of any service, pointing at the test infra."""
    env = dict(infra["env"])
    env.update(TESTING=True, DB_PORT=int(env["DB_PORT"]), TRUSTED_PROXY_HOPS=1, LOG_LEVEL="WARNING")
    return env


@pytest.fixture(scope="session")
def live_stack(infra):
    """Every service under gunicorn + the nginx gateway, like `make up`, on test ports."""
    stack = infra["stack"]
    procs: Processes = infra["procs"]
    # Many tests fail logins and sign up on purpose, all from 127.0.0.1; the per-address
    # throttles (tested in-process by auth-svc's own tests) would otherwise lock later tests out
    # (every sign-up also counts as a password check).
    # Webhook tests register a receiver on 127.0.0.1 (the operator's allowance for private
    # targets; tests/test_webhooks.py checks the refusal with an app that has it off).
    env = dict(infra["env"], LOG_LEVEL="WARNING", LOGIN_MAX_FAILURES_IP="100000", SIGNUP_MAX_PER_IP="100000",
               PASSWORD_CHECKS_PER_MINUTE="100000", WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    started = []
    for name in SERVICES:
        started.append((name, procs.start(name, gunicorn_command(stack, name, sys.executable),
                                               for_service(name, env))))
    for name, proc in started:
        components.wait_http(f"{stack.url(name)}/healthz", proc)
    components.nginx_prepare(stack, env)
    gw = procs.start("gateway", components.nginx_command(stack))
    components.wait_http(f"{stack.gateway_url}/gateway/healthz", gw)
    yield {"url": stack.gateway_url, "stack": stack, "env": env, "procs": procs}
    for name in ["gateway", *SERVICES]:
        procs.stop(name)
