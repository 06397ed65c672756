"""Phase 3 — `down` then `up`: named volumes keep the data (the user still logs in, the
token signing key survived so a token issued before the restart still verifies, the
processed video is still ready; phase 4 then plays it again)."""
from __future__ import annotations

from client import Gateway, User
from svcompose import Compose


def test_data_survives_down_up(compose: Compose, gateway: Gateway, user: User, ready_video: dict):
    assert gateway.login(user).status_code == 200
    token_before = user.access_token
    compose.run("down", timeout=300)
    took = compose.up()
    print(f"\n`up` after `down` healthy in {took:.1f}s", flush=True)
    g = Gateway(gateway.base)
    r = g.login(user)
    assert r.status_code == 200, f"registered user could not log in after down/up: {r.status_code} {r.text}"
    r = g.get("/api/auth/profile", headers={"Authorization": f"Bearer {token_before}"})
    assert r.status_code == 200, f"a token issued before the restart no longer verifies: {r.text}"
    # The processed video (rows in MariaDB, media in S3) is still there and ready.
    r = g.get(f"/api/videos/{ready_video['id']}", headers={"Authorization": f"Bearer {user.access_token}"})
    assert r.status_code == 200 and r.json()["video"]["status"] == "ready", r.text
