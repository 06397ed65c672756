"""Phase 1b — the whole media path through the gateway: upload a generated video, wait
until the workers made it ready, open a playback session with the contract client
(DPoP device token, ECDH key exchange) and decrypt every segment into a playable file."""
from __future__ import annotations

from pathlib import Path

from client import Gateway, User
from media import play_lowest


def test_upload_becomes_ready(ready_video: dict):
    assert ready_video["status"] == "ready"


def test_library_lists_it(gateway: Gateway, user: User, ready_video: dict):
    gateway.login(user)
    r = gateway.get("/api/library", headers={"Authorization": f"Bearer {user.access_token}"})
    assert r.status_code == 200, r.text
    assert ready_video["id"] in [v["id"] for v in r.json()["items"]]


def test_playback_decrypts_every_segment(gateway: Gateway, user: User, ready_video: dict, tmp_path: Path):
    played = play_lowest(gateway.base, user, ready_video["id"], tmp_path / "played.mp4")
    duration = float(played.info["format"]["duration"])
    print(f"\nsession {played.session.id}: {len(played.rendition.segment_urls)} segments of {played.rendition.id} "
          f"decrypted, {duration:.1f}s playable", flush=True)
    assert any(st["codec_type"] == "video" for st in played.info["streams"])
    assert duration > 6
    played.client.end(played.session)
