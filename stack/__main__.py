"""``python -m stack up|down|gate|prepare``.

up    prepare data folders, configs and secrets, write a Procfile and run it with honcho
      (MariaDB, SeaweedFS, every service under gunicorn, nginx) until Ctrl-C.
down  stop a running ``up`` (signals honcho, which stops its children).
gate  wait for MariaDB, create the database/user, migrate, then exec the given command
      with the settings of --env-file added: used in the Procfile so services start only
      on a ready, migrated database, each with only its own settings.
prepare  data folders, configs and secrets only (what ``up`` does before it starts anything).
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import components, dbsetup
from .environment import READS, WORKER_CWD, gunicorn_command, service_env, worker_command
from .layout import DEV, ROOT, SERVICES, TEST, Stack
from .secrets import load_or_create, read_env_file

STACKS = {"dev": DEV, "test": TEST, TEST.name: TEST}   # TEST.name follows SV_TEST_STACK


def prepare(stack: Stack) -> dict:
    (stack.var / "logs").mkdir(parents=True, exist_ok=True)
    secrets = load_or_create(stack.var / "secrets.env")
    components.mariadb_prepare(stack)
    components.seaweed_prepare(stack, secrets)
    components.nginx_prepare(stack, dict(os.environ))   # body limits follow UPLOAD_MAX_BYTES etc.
    return secrets


def wait_tcp(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def write_procfile(stack: Stack, secrets: dict) -> tuple[str, str]:
    py = sys.executable
    q = lambda argv: " ".join(shlex.quote(a) for a in argv)  # noqa: E731
    envdir = stack.var / "env"
    envdir.mkdir(exist_ok=True)
    for name in READS:     # one file per process: only the settings (secrets) it reads
        envfile = envdir / f"{name}.env"
        envfile.write_text("".join(f"{k}={v}\n" for k, v in service_env(stack, secrets, name).items()))
        envfile.chmod(0o600)

    def gate(name: str | None, *waits: int) -> list[str]:
        argv = [py, "-m", "stack", "gate", "--stack", stack.name]
        for port in waits:
            argv += ["--wait-port", str(port)]
        return argv + (["--env-file", str(envdir / f"{name}.env")] if name else []) + ["--"]
    lines = [f"mariadb: {q(components.mariadb_command(stack))}",
             f"s3: {q(components.seaweed_command(stack))}"]
    for name in SERVICES:
        waits = [stack.weed_port("s3")] if name == "file" else []
        lines.append(f"{name}: {q(gate(name, *waits) + gunicorn_command(stack, name, py))}")
    lines.append(f"worker: env PYTHONPATH={WORKER_CWD} {q(gate('worker') + worker_command(py))}")
    lines.append(f"gateway: {q(gate(None, stack.port('auth')) + components.nginx_command(stack))}")
    procfile = stack.var / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")
    # honcho's environment for every process (also keeps it from reading a ./.env meant for
    # compose): no secrets; each service's own come from its file above, through `gate`.
    envfile = stack.var / "stack.env"
    envfile.write_text("LOG_LEVEL=INFO\n")
    return str(procfile), str(envfile)


def running_pid(stack: Stack) -> int | None:
    try:
        pid = int((stack.var / "up.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def cmd_up(stack: Stack) -> int:
    pid = running_pid(stack)
    if pid:
        print(f"StreamVault is already running (pid {pid}); `make down` stops it.", file=sys.stderr)
        return 1
    secrets = prepare(stack)
    procfile, envfile = write_procfile(stack, secrets)
    print(f"""
  StreamVault is starting (logs follow; Ctrl-C or `make down` stops everything).
    URL:    {stack.gateway_url}/  (login: {stack.gateway_url}/auth/login)
    admin:  admin / {secrets['ADMIN_PASSWORD']}   (from {stack.var / 'secrets.env'})
    data:   {stack.var}
""", flush=True)
    (stack.var / "up.pid").write_text(str(os.getpid()))
    os.chdir(ROOT)
    # Seeds the demo video once the gateway answers; not supervised (it exits when done).
    subprocess.Popen([sys.executable, "-m", "stack.demo"], cwd=ROOT)
    honcho = components.venv_bin("honcho")
    os.execv(honcho, [honcho, "start", "-f", procfile, "-e", envfile, "-d", str(ROOT)])
    return 0


def cmd_down(stack: Stack) -> int:
    pidfile = stack.var / "up.pid"
    if not pidfile.exists():
        print("StreamVault is not running (no pid file).")
        return 0
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print("StreamVault was not running.")
    else:
        for _ in range(100):
            try:
                os.kill(pid, 0)
                time.sleep(0.2)
            except ProcessLookupError:
                break
        print("StreamVault stopped.")
    pidfile.unlink(missing_ok=True)
    return 0


def cmd_gate(stack: Stack, wait_ports: list[int], command: list[str], env_file: str | None = None) -> int:
    secrets = load_or_create(stack.var / "secrets.env")
    dbsetup.setup(stack, secrets["DB_PASSWORD"], out=lambda m: print(f"[migrate] {m}", flush=True))
    for port in wait_ports:
        wait_tcp(port)
    env = dict(os.environ)
    if env_file:
        env.update(read_env_file(Path(env_file)))
    os.execvpe(command[0], command, env)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stack")
    ap.add_argument("command", choices=["up", "down", "gate", "prepare"])
    ap.add_argument("--stack", default="dev", choices=sorted(STACKS))
    ap.add_argument("--wait-port", type=int, action="append", default=[])
    ap.add_argument("--env-file", help="gate: settings added to the command's environment")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    stack = STACKS[args.stack]
    if args.command == "up":
        return cmd_up(stack)
    if args.command == "down":
        return cmd_down(stack)
    if args.command == "prepare":
        prepare(stack)
        return 0
    if not rest:
        ap.error("gate needs a command after --")
    return cmd_gate(stack, args.wait_port, rest, args.env_file)


if __name__ == "__main__":
    raise SystemExit(main())
