"""``python -m stack up|down|gate|prepare``.

up    prepare data folders, configs and secrets, write a supervisord config and run it
      (MariaDB, SeaweedFS, every service under gunicorn, a media worker, nginx) until
      Ctrl-C: a process that dies is restarted, the rest keep serving (supervision.py).
down  stop a running ``up`` (signals supervisord, which stops every program's group).
status  supervisorctl's view of a running ``up``: each program's state, pid and uptime.
gate  wait for MariaDB, create the database/user, migrate, then exec the given command
      with the settings of --env-file added: every service's program runs through it so
      services start only on a ready, migrated database, each with only its own settings
      (and, with --name, after the previous run's leftover processes are gone).
prepare  data folders, configs and secrets only (what ``up`` does before it starts anything).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import components, dbsetup, supervision
from .environment import READS, WORKER_CWD, gunicorn_command, service_env, worker_command
from .layout import DEV, ROOT, SERVICES, TEST, Stack
from .secrets import load_or_create, read_env_file

STACKS = {"dev": DEV, "test": TEST, TEST.name: TEST}   # TEST.name follows SV_TEST_STACK


def prepare(stack: Stack) -> dict:
    (stack.var / "logs").mkdir(parents=True, exist_ok=True)
    secrets = load_or_create(stack.var / "secrets.env")
    # First: the gateway's settings are checked here (a bad one stops the start before any data).
    components.nginx_prepare(stack, dict(os.environ))   # body limits follow UPLOAD_MAX_BYTES etc.
    components.mariadb_prepare(stack)
    components.seaweed_prepare(stack, secrets)
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


def write_config(stack: Stack, secrets: dict) -> str:
    """supervisord.conf for the stack, plus one env file per process (0600): only the
    settings (secrets) that process reads, added by ``gate``."""
    py = sys.executable
    envdir = stack.var / "env"
    envdir.mkdir(exist_ok=True)
    for name in READS:
        envfile = envdir / f"{name}.env"
        envfile.write_text("".join(f"{k}={v}\n" for k, v in service_env(stack, secrets, name).items()))
        envfile.chmod(0o600)

    def gate(name: str, env_name: str | None, *waits: int) -> list[str]:
        argv = [py, "-m", "stack", "gate", "--stack", stack.name, "--name", name]
        for port in waits:
            argv += ["--wait-port", str(port)]
        return argv + (["--env-file", str(envdir / f"{env_name}.env")] if env_name else []) + ["--"]
    Program = supervision.Program
    # Priorities: started in this order, stopped in reverse. MariaDB gets a minute to flush
    # InnoDB; SeaweedFS takes over 15 s to honour SIGTERM (conftest.py gives it 2), so 10 s.
    programs = [Program("mariadb", components.mariadb_command(stack), 10, stop_seconds=60),
                Program("s3", components.seaweed_command(stack), 10, stop_seconds=10)]
    for name in SERVICES:
        waits = [stack.weed_port("s3")] if name == "file" else []
        programs.append(Program(name, gate(name, name, *waits) + gunicorn_command(stack, name, py), 20))
    programs.append(Program("worker", gate("worker", "worker") + worker_command(py), 30,
                            env={"PYTHONPATH": WORKER_CWD}))
    programs.append(Program("gateway", gate("gateway", None, stack.port("auth")) + components.nginx_command(stack), 40))
    # Every process's environment beyond supervisord's own: no secrets (each service's come
    # from its env file, through `gate`).
    path = supervision.config_path(stack)
    path.write_text(supervision.render(stack, programs, {"LOG_LEVEL": os.environ.get("LOG_LEVEL") or "INFO"}))
    path.chmod(0o600)
    return str(path)


def running_pid(stack: Stack) -> int | None:
    try:
        pid = int((stack.var / "up.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _running(pid: int) -> bool:
    """Alive and not a zombie (one whose parent, not `down`, has yet to reap it is done)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmd_up(stack: Stack, demo: bool = True) -> int:
    pid = running_pid(stack)
    if pid:
        print(f"StreamVault is already running (pid {pid}); `make down` stops it.", file=sys.stderr)
        return 1
    busy = components.busy_ports(stack, supervision.previous_groups(stack))
    if busy:
        moved = Stack(stack.name, stack.offset + 10000)
        how = f"SV_PORT_OFFSET={moved.offset} make up" if stack.name == "dev" else f"SV_TEST_OFFSET={moved.offset}"
        print("StreamVault did not start: " + "; ".join(busy) + ".\n  Stop that program, or move the whole suite to "
              f"other ports: {how} (then {moved.gateway_url}/).", file=sys.stderr)
        return 2
    try:
        secrets = prepare(stack)
    except ValueError as exc:       # a setting that cannot be used (e.g. GATEWAY_TRUSTED_PROXIES)
        print(f"StreamVault did not start: {exc}", file=sys.stderr)
        return 2
    config = write_config(stack, secrets)
    print(f"""
  StreamVault is starting (Ctrl-C or `make down` stops everything; a process that dies
  is restarted on its own). Starts, exits and restarts follow here; each process's log
  is in {stack.var / 'logs'}/<name>.log (`python -m stack status` lists them).
    URL:    {stack.gateway_url}/  (login: {stack.gateway_url}/auth/login)
    admin:  admin / {secrets['ADMIN_PASSWORD']}   (from {stack.var / 'secrets.env'})
    data:   {stack.var}
""", flush=True)
    (stack.var / "up.pid").write_text(str(os.getpid()))
    os.chdir(ROOT)
    if demo:   # seeds the demo video once the gateway answers; not supervised (exits when done)
        subprocess.Popen([sys.executable, "-m", "stack.demo", "--stack", stack.name], cwd=ROOT)
    supervisord = components.venv_bin("supervisord")
    os.execv(supervisord, [supervisord, "-c", config])
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
        # supervisord stops the gateway and services first, then MariaDB and SeaweedFS
        # (each within its stop_seconds, then SIGKILL): at most about a minute and a half.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.2)
        print("StreamVault stopped.")
    pidfile.unlink(missing_ok=True)
    return 0


def cmd_status(stack: Stack) -> int:
    ctl = components.venv_bin("supervisorctl")
    return subprocess.run([ctl, "-c", str(supervision.config_path(stack)), "status"]).returncode


def cmd_gate(stack: Stack, wait_ports: list[int], command: list[str], env_file: str | None = None,
             name: str | None = None) -> int:
    if name:
        supervision.stop_leftovers(stack, name)
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
    ap.add_argument("command", choices=["up", "down", "status", "gate", "prepare"])
    ap.add_argument("--stack", default="dev", choices=sorted(STACKS))
    ap.add_argument("--wait-port", type=int, action="append", default=[])
    ap.add_argument("--env-file", help="gate: settings added to the command's environment")
    ap.add_argument("--name", help="gate: the supervised program's name (its leftovers are stopped first)")
    ap.add_argument("--no-demo", action="store_true", help="up: do not seed the demo video")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    stack = STACKS[args.stack]
    if args.command == "up":
        return cmd_up(stack, demo=not args.no_demo)
    if args.command == "down":
        return cmd_down(stack)
    if args.command == "status":
        return cmd_status(stack)
    if args.command == "prepare":
        prepare(stack)
        return 0
    if not rest:
        ap.error("gate needs a command after --")
    return cmd_gate(stack, args.wait_port, rest, args.env_file, args.name)


if __name__ == "__main__":
    raise SystemExit(main())
