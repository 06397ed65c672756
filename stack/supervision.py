"""The supervisord configuration of ``python -m stack up`` (``make up``), and the clean-up a
restarted program does before it starts.

supervisord (PyPI ``supervisor``) runs every process of the stack: a process that exits
unexpectedly is restarted at once while the others keep serving; one that keeps failing
within ``START_SECONDS`` of its start waits 1, 2, 3 … s between tries (supervisord's
backoff) and is given up after ``START_RETRIES`` tries in a row. SIGTERM (``make down``)
or SIGINT (Ctrl-C) stops everything in reverse priority order (gateway first, MariaDB and
SeaweedFS last), each program's whole process group. Each program's output goes to
``var/<stack>/logs/<name>.log`` (rotated); supervisord's own log (starts, exits, restarts)
to the terminal."""
from __future__ import annotations

import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .layout import ROOT, Stack

START_SECONDS = 5          # up this long = started; an earlier exit counts as a failed start
START_RETRIES = 100        # failed starts in a row before supervisord gives a program up
LOG_BYTES = "50MB"         # per program log file, 5 rotated copies kept


@dataclass
class Program:
    name: str
    argv: list[str]
    priority: int                         # started in ascending, stopped in descending order
    stop_seconds: int = 15                # SIGTERM, then SIGKILL to the group after this long
    env: dict[str, str] = field(default_factory=dict)


def _quote(argv: list[str]) -> str:
    # supervisord expands %(name)s in a command: a literal % is written %%.
    return " ".join(shlex.quote(a) for a in argv).replace("%", "%%")


def _env_line(env: dict[str, str]) -> str:
    """supervisord's ``environment=`` syntax: KEY="value",… (values are ours: no quotes)."""
    if any('"' in v or "%" in v for v in env.values()):
        raise ValueError("supervisord environment values must not contain quotes or %")
    return ",".join(f'{k}="{v}"' for k, v in env.items())


def render(stack: Stack, programs: list[Program], env: dict[str, str]) -> str:
    """supervisord.conf text: control socket private to the owner (``supervisorctl -c``)."""
    var, logs = stack.var, stack.var / "logs"
    out = [f"""[supervisord]
{"user=root" if os.geteuid() == 0 else ""}
nodaemon=true
logfile=/dev/stdout
logfile_maxbytes=0
pidfile={var / 'supervisord.pid'}
childlogdir={logs}
directory={ROOT}
environment={_env_line(env)}

[unix_http_server]
file={var / 'supervisor.sock'}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{var / 'supervisor.sock'}
"""]
    for p in programs:
        extra = f"environment={_env_line(p.env)}\n" if p.env else ""
        out.append(f"""[program:{p.name}]
command={_quote(p.argv)}
directory={ROOT}
priority={p.priority}
autostart=true
autorestart=true
startsecs={START_SECONDS}
startretries={START_RETRIES}
stopsignal=TERM
stopwaitsecs={p.stop_seconds}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={logs / (p.name + '.log')}
stdout_logfile_maxbytes={LOG_BYTES}
stdout_logfile_backups=5
{extra}""")
    return "\n".join(out)


# ---- a restarted program's leftovers ------------------------------------------------------
def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def previous_groups(stack: Stack) -> set[int]:
    """The process groups of the stack's previous run, as ``stop_leftovers`` recorded them."""
    groups = set()
    for mark in (stack.var / "run").glob("*.pgid"):
        try:
            groups.add(int(mark.read_text()))
        except (OSError, ValueError):
            pass
    return groups


def stop_leftovers(stack: Stack, name: str) -> None:
    """Called by ``stack gate`` before it execs program ``name``. supervisord starts each
    program in a process group of its own (group id = the program's pid). When a program's
    main process is SIGKILLed its children stay behind — nginx workers serve on, gunicorn
    workers until they notice — and keep the listening socket, so the restarted program
    could not bind it. Those children are exactly the members of the previous run's group:
    Linux never reuses a pid while it is still a process group's id, so nothing else can be
    in it. Only done when this process leads its own group (started by supervisord)."""
    if os.getpgrp() != os.getpid():
        return
    rundir = stack.var / "run"
    rundir.mkdir(exist_ok=True)
    mark = rundir / f"{name}.pgid"
    try:
        previous = int(mark.read_text())
    except (OSError, ValueError):
        previous = None
    if previous and previous != os.getpid():
        left = group_members(previous)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = group_members(previous)
    mark.write_text(str(os.getpid()))


def config_path(stack: Stack) -> Path:
    return stack.var / "supervisord.conf"
