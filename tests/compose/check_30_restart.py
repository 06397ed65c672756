"""Phase 3 — `down` then `up`: named volumes keep the data (the user still logs in, the
token signing key survived so a token issued before the restart still verifies)."""
from __future__ import annotations

from client import Gateway, User
from svcompose import Compose


def test_data_survives_down_up(compose: Compose, gateway: Gateway, user: User):
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
