"""One access line per request (issue #12 item 7): a service started exactly as `make up`
starts it (stack.environment.gunicorn_command) logs each request once — svcommon's JSON line
with the request id — and no gunicorn access line beside it."""
from __future__ import annotations

import json
import socket
import sys
import uuid

import requests

from stack import components
from stack.environment import gunicorn_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_request_is_logged_once_with_its_request_id(infra):
    # file-svc needs only S3; its own port, so a live_stack of the same session is untouched.
    argv = gunicorn_command(infra["stack"], "file", sys.executable)
    port = _free_port()
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    procs = infra["procs"]
    proc = procs.start("file-logs", argv, dict(infra["env"], LOG_LEVEL="INFO"))
    try:
        components.wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        rid = uuid.uuid4().hex
        path = f"/objects/no-such-{rid}"
        r = requests.get(f"http://127.0.0.1:{port}{path}", headers={"X-Request-ID": rid}, timeout=10)
        assert r.status_code == 401 and r.headers["X-Request-ID"] == rid
    finally:
        procs.stop("file-logs")             # waits for the exit: every line is written
    lines = [line for line in (procs.logdir / "file-logs.log").read_text().splitlines() if path in line]
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["request_id"] == rid and entry["status"] == 401 and entry["msg"] == "request"
