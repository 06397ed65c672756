"""Refresh-token rotation; reuse of a rotated token revokes its whole family (after a short
grace in which a second use is a concurrent refresh, not a theft)."""
from __future__ import annotations

import hashlib

from svcommon.db import execute, query


def _refresh(client, token):
    return client.post("/api/auth/refresh", json={"refresh_token": token})


def _age_rotation(app, token, seconds=3600):
    """Move the token's rotation into the past (instead of sleeping through the grace)."""
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        execute(conn, "UPDATE refresh_tokens SET rotated_at = rotated_at - INTERVAL %s SECOND WHERE token_hash = %s",
                (seconds, hashlib.sha256(token.encode()).digest()))
        conn.commit()


def _events(app, user_id, kind):
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        return query(conn, "SELECT id FROM security_events WHERE user_id = %s AND kind = %s", (user_id, kind))


def test_rotation_gives_a_new_pair(client, auth):
    _, pair = auth.user_with_token()
    resp = _refresh(client, pair["refresh_token"])
    assert resp.status_code == 200
    new = resp.get_json()
    assert new["refresh_token"] != pair["refresh_token"] and new["access_token"] != pair["access_token"]
    assert client.get("/api/auth/profile", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 200


def test_reuse_revokes_the_family(app, client, auth):
    _, pair = auth.user_with_token()
    second = _refresh(client, pair["refresh_token"]).get_json()
    _age_rotation(app, pair["refresh_token"])
    reuse = _refresh(client, pair["refresh_token"])           # the thief (or the victim) replays
    assert reuse.status_code == 401 and reuse.get_json()["code"] == "refresh_token_reused"
    assert _refresh(client, second["refresh_token"]).status_code == 401   # the legitimate chain is dead too


def test_other_logins_survive_a_family_revocation(app, client, auth):
    user, pair = auth.user_with_token()
    other = auth.login(user["username"]).get_json()
    _refresh(client, pair["refresh_token"])
    _age_rotation(app, pair["refresh_token"])
    assert _refresh(client, pair["refresh_token"]).status_code == 401
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


def test_concurrent_refresh_is_not_taken_for_a_theft(app, client, auth):
    """Two tabs refreshing with the same cookie at once once revoked the family (both logged
    out) and recorded a false refresh_reuse event."""
    user, pair = auth.user_with_token()
    winner = _refresh(client, pair["refresh_token"]).get_json()
    loser = _refresh(client, pair["refresh_token"])
    assert loser.status_code == 409 and loser.get_json()["code"] == "refresh_token_superseded"
    assert "access_token" not in loser.get_json()                       # nothing issued to the loser
    assert _refresh(client, winner["refresh_token"]).status_code == 200  # the session lives on
    assert not _events(app, user["id"], "refresh_reuse")


def test_concurrent_page_bounce_goes_back_without_clearing_cookies(app, client, auth):
    user = auth.register()
    pair = auth.login(user["username"], user["password"]).get_json()
    assert _refresh(client, pair["refresh_token"]).status_code == 200   # the other tab won
    client.set_cookie("sv_refresh", pair["refresh_token"])
    resp = client.get("/auth/refresh?redirect=/upload/")
    assert resp.status_code == 303 and resp.headers["Location"] == "/upload/"
    assert "sv_refresh=;" not in " ".join(resp.headers.getlist("Set-Cookie"))
