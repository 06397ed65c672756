"""The worker's heartbeat file (what the compose healthcheck reads)."""
from __future__ import annotations

import os
import time

from flask import Flask

from watermark_svc.jobs import heartbeat


def test_heartbeat_touches_the_file(tmp_path):
    app = Flask(__name__)
    path = tmp_path / "hb"
    app.config["WORKER_HEARTBEAT_FILE"] = str(path)
    heartbeat(app)
    assert path.exists()
    os.utime(path, (time.time() - 500, time.time() - 500))
    heartbeat(app)
    assert time.time() - path.stat().st_mtime < 5


def test_no_file_configured_writes_nothing(tmp_path):
    app = Flask(__name__)
    app.config["WORKER_HEARTBEAT_FILE"] = ""
    heartbeat(app)
    assert list(tmp_path.iterdir()) == []
