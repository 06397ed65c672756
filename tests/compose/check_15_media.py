"""Phase 1b — the whole media path through the gateway: upload a generated video, wait
until the workers made it ready, open a playback session with the contract client
(DPoP device token, ECDH key exchange) and decrypt every segment into a playable file."""
from __future__ import annotations

from pathlib import Path

from client import Gateway, User
from media import ContractClient, probe


def test_upload_becomes_ready(ready_video: dict):
    assert ready_video["status"] == "ready"


def test_library_lists_it(gateway: Gateway, user: User, ready_video: dict):
    gateway.login(user)
    r = gateway.get("/api/library", headers={"Authorization": f"Bearer {user.access_token}"})
    assert r.status_code == 200, r.text
    assert ready_video["id"] in [v["id"] for v in r.json()["items"]]


def test_playback_decrypts_every_segment(gateway: Gateway, user: User, ready_video: dict, tmp_path: Path):
    c = ContractClient(gateway.base).login(user.username, user.password)
    s = c.open_session(ready_video["id"])
    reps = c.representations(s)
    video_reps = [r for r in reps if r.kind == "video"]
    assert video_reps, reps
    lowest = min(video_reps, key=lambda r: r.height or 0)
    out = c.download(s, lowest.id, tmp_path / "played.mp4", audio=any(r.kind == "audio" for r in reps))
    info = probe(out)
    duration = float(info["format"]["duration"])
    print(f"\nsession {s.id}: {len(lowest.segment_urls)} segments of {lowest.id} decrypted, "
          f"{duration:.1f}s playable", flush=True)
    assert any(st["codec_type"] == "video" for st in info["streams"])
    assert duration > 6
    c.end(s)
