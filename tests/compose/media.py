"""Media helpers for the compose checks: generated clips and the contract playback client
(tests/support, written from the public contract only)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
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


def upload_ready(gateway, user, clip: Path, title: str) -> dict:
    """Upload a clip as a public video through the gateway and wait until it is ready."""
    assert gateway.login(user).status_code == 200
    t0 = time.monotonic()
    with open(clip, "rb") as f:
        r = gateway.post("/api/videos", headers={"Authorization": f"Bearer {user.access_token}"},
                         data={"title": title, "description": "generated", "visibility": "public"},
                         files={"file": ("clip.mp4", f, "video/mp4")}, timeout=120)
    assert r.status_code == 201, r.text
    video = wait_ready(gateway, user, r.json()["video"]["id"])
    print(f"\nuploaded {clip.stat().st_size} bytes; ready after {time.monotonic() - t0:.1f}s", flush=True)
    return video


@dataclass
class Playback:
    client: ContractClient
    session: object
    rendition: object
    info: dict          # ffprobe of the decrypted file


def play_lowest(base: str, user, video_id: str, out: Path) -> Playback:
    """As `user`, open a playback session (DPoP device token, ECDH key exchange) and decrypt
    every segment of the lowest video rendition, with the audio when there is some, into `out`."""
    c = ContractClient(base).login(user.username, user.password)
    s = c.open_session(video_id)
    reps = c.representations(s)
    video_reps = [r for r in reps if r.kind == "video"]
    assert video_reps, reps
    lowest = min(video_reps, key=lambda r: r.height or 0)
    played = c.download(s, lowest.id, out, audio=any(r.kind == "audio" for r in reps))
    return Playback(c, s, lowest, probe(played))


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
                          str(path)], check=True, text=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)
