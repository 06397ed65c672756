"""Media helpers for the compose checks: generated clips and the contract playback client
(tests/support, written from the public contract only)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.contract_client import ContractClient, ContractError  # noqa: E402,F401
from support.media import make_clip  # noqa: E402,F401


def wait_ready(gateway, user, video_id: str, timeout: float = 600) -> dict:
    """Poll the owner's view of a video until it is ready (or failed / timed out)."""
    deadline = time.monotonic() + timeout
    last, logged_in = None, 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - logged_in > 120:  # access tokens live 5 minutes
            assert gateway.login(user).status_code == 200
            logged_in = time.monotonic()
        r = gateway.get(f"/api/videos/{video_id}", headers={"Authorization": f"Bearer {user.access_token}"})
        assert r.status_code == 200, r.text
        last = r.json()["video"]
        if last["status"] == "ready":
            return last
        assert last["status"] != "failed", f"processing failed: {last}"
        time.sleep(2)
    raise AssertionError(f"video not ready after {timeout:.0f}s: {last}")


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
                          str(path)], check=True, text=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)
