"""Refresh-token rotation; reuse of a rotated token revokes its whole family."""
from __future__ import annotations


def _refresh(client, token):
    return client.post("/api/auth/refresh", json={"refresh_token": token})


def test_rotation_gives_a_new_pair(client, auth):
    _, pair = auth.user_with_token()
    resp = _refresh(client, pair["refresh_token"])
    assert resp.status_code == 200
    new = resp.get_json()
    assert new["refresh_token"] != pair["refresh_token"] and new["access_token"] != pair["access_token"]
    assert client.get("/api/auth/profile", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 200


def test_reuse_revokes_the_family(client, auth):
    _, pair = auth.user_with_token()
    second = _refresh(client, pair["refresh_token"]).get_json()
    reuse = _refresh(client, pair["refresh_token"])           # the thief (or the victim) replays
    assert reuse.status_code == 401 and reuse.get_json()["code"] == "refresh_token_reused"
    assert _refresh(client, second["refresh_token"]).status_code == 401   # the legitimate chain is dead too


def test_other_logins_survive_a_family_revocation(client, auth):
    user, pair = auth.user_with_token()
    other = auth.login(user["username"]).get_json()
    _refresh(client, pair["refresh_token"])
    _refresh(client, pair["refresh_token"])
    assert _refresh(client, other["refresh_token"]).status_code == 200


def test_logout_revokes(client, auth):
    _, pair = auth.user_with_token()
    assert client.post("/api/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code == 204
    assert _refresh(client, pair["refresh_token"]).status_code == 401


def test_garbage_refresh_tokens(client):
    for token in ["", "x", "a" * 5000, "' OR 1=1 --", None, 42]:
        resp = client.post("/api/auth/refresh", json={"refresh_token": token})
        assert resp.status_code in (400, 401), token
        assert "error" in resp.get_json()
