"""`make up` on a machine where another program holds one of the suite's ports (3000, 8000 and
8080 are every other dev server's): it stops at once, naming the port, the program and its pid,
and how to move the suite (SV_PORT_OFFSET), before preparing anything. Before, the service whose
port was taken restarted for ever, and services waiting on MariaDB's or S3's port took the other
program for ours."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil

from stack.layout import ROOT, TEST, Stack

# Ports apart from every stack of this test run (layout.py: +300 shares none with TEST's, +500's, +700's).
STACK = Stack(f"{TEST.name}-ports", TEST.offset + 300)
ENV = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"} | {
    "SV_TEST_STACK": STACK.name, "SV_TEST_OFFSET": str(STACK.offset)}


def _up() -> subprocess.CompletedProcess:
    """`python -m stack up` for STACK; stopped (`stack down`: supervisord stops its programs) if
    it ever got further than the check."""
    proc = subprocess.Popen([sys.executable, "-m", "stack", "up", "--stack", "test", "--no-demo"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            subprocess.run([sys.executable, "-m", "stack", "down", "--stack", "test"], cwd=ROOT, env=ENV, timeout=150)
            os.killpg(proc.pid, 9)
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_port_held_by_another_program_stops_the_start_and_names_it():
    with socket.socket() as held:
        held.bind(("127.0.0.1", STACK.mariadb_port))
        held.listen()
        done = _up()
    assert done.returncode == 2, (done.stdout, done.stderr)
    me = psutil.Process().name()
    assert f"127.0.0.1:{STACK.mariadb_port}, MariaDB's port, is taken by {me} (pid {os.getpid()})" in done.stderr
    assert f"SV_TEST_OFFSET={STACK.offset + 10000}" in done.stderr and "left running" not in done.stderr
    assert not (STACK.var / "mariadb").exists() and not (STACK.var / "up.pid").exists()     # nothing prepared


def test_a_leftover_of_an_earlier_run_is_said_to_be_one():
    """A program of this stack's folder still listening (its supervisor was killed): said as
    such, with the command that stops it."""
    holder = subprocess.Popen([sys.executable, "-c", "import socket, sys, time\n"
                               "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
                               "print('up', flush=True); time.sleep(120)", str(STACK.gateway_port), str(STACK.var)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "up"
        name = psutil.Process(holder.pid).name()
        done = _up()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert (f"127.0.0.1:{STACK.gateway_port}, the gateway (nginx)'s port, is taken by {name} (pid {holder.pid}), "
            f"left running by an earlier run of this stack: `kill {holder.pid}`") in done.stderr, done.stderr


def test_a_port_offset_that_cannot_work_is_refused_in_one_line():
    done = subprocess.run([sys.executable, "-m", "stack", "status"], cwd=ROOT, capture_output=True, text=True,
                          env=ENV | {"SV_PORT_OFFSET": "30000"}, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().startswith("SV_PORT_OFFSET='30000': a whole number"), done.stderr


def test_a_port_held_only_by_a_closed_connection_is_said_to_be_one():
    """A stack moved into the range the system picks outgoing ports from (an offset of 34000:
    32768-60999 on Linux) finds its ports held for a minute by connections that used them and
    closed (TIME-WAIT), not by a program: said so, with what to do."""
    from stack import components
    port = STACK.port("streaming")
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.bind(("127.0.0.1", port))                       # as an outgoing connection's port
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        client.close()                                         # the side that closes first keeps TIME-WAIT
        accepted.close()
    busy = components.busy_ports(STACK, wait=0)
    assert len(busy) == 1 and busy[0].startswith(f"127.0.0.1:{port}, streaming-svc's port, is held "
                                                 "by closed connections for up to a minute (TIME-WAIT)"), busy
    assert "system's range for outgoing ports" in busy[0]
