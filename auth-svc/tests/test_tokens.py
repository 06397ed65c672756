"""Access-token attacks: every forged or stale token is refused with 401."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def _claims(app, user_id, **over):
    now = int(time.time())
    base = {"iss": app.config["JWT_ISSUER"], "aud": app.config["JWT_AUDIENCE"], "sub": user_id, "name": "x",
            "role": "admin", "iat": now, "exp": now + 300, "jti": "j" * 16}
    base.update(over)
    return base


def _signing_key(app):
    return app.extensions["auth.keyring"].signing_key()


def test_valid_token_is_accepted(client, auth):
    user, pair = auth.user_with_token()
    resp = client.get("/api/auth/profile", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert resp.status_code == 200
    assert resp.get_json() == {"id": user["id"], "username": user["username"], "email": user["email"], "role": "viewer"}


def test_no_credentials(client):
    resp = client.get("/api/auth/profile")
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "unauthorized"


def forged_tokens(app, user_id):
    kid, key = _signing_key(app)
    good = jwt.encode(_claims(app, user_id), key, algorithm="ES256", headers={"kid": kid})
    h, p, s = good.split(".")
    public_pem = key.public_key().public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PublicFormat.SubjectPublicKeyInfo)
    import hmac, hashlib
    hs_header = _b64({"alg": "HS256", "kid": kid, "typ": "JWT"})
    hs_body = _b64(_claims(app, user_id))
    hs_sig = base64.urlsafe_b64encode(hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    other = ec.generate_private_key(ec.SECP256R1())
    return {
        "alg_none": f"{_b64({'alg': 'none', 'kid': kid})}.{_b64(_claims(app, user_id))}.",
        "hs256_with_public_key": f"{hs_header}.{hs_body}.{hs_sig}",
        "expired": jwt.encode(_claims(app, user_id, iat=int(time.time()) - 900, exp=int(time.time()) - 600), key,
                              algorithm="ES256", headers={"kid": kid}),
        "wrong_audience": jwt.encode(_claims(app, user_id, aud="someone-else"), key, algorithm="ES256", headers={"kid": kid}),
        "service_audience": jwt.encode(_claims(app, user_id, aud="streamvault-internal"), key, algorithm="ES256", headers={"kid": kid}),
        "wrong_issuer": jwt.encode(_claims(app, user_id, iss="https://evil.example"), key, algorithm="ES256", headers={"kid": kid}),
        "unknown_kid": jwt.encode(_claims(app, user_id), other, algorithm="ES256", headers={"kid": "not-a-real-kid"}),
        "own_key_our_kid": jwt.encode(_claims(app, user_id), other, algorithm="ES256", headers={"kid": kid}),
        "tampered_payload": f"{h}.{_b64({**_claims(app, user_id), 'role': 'admin', 'sub': 'someone'})}.{s}",
        "missing_jti": jwt.encode({k: v for k, v in _claims(app, user_id).items() if k != "jti"}, key,
                                  algorithm="ES256", headers={"kid": kid}),
        "garbage": "not.a.token",
    }


ATTACKS = ["alg_none", "hs256_with_public_key", "expired", "wrong_audience", "service_audience", "wrong_issuer",
           "unknown_kid", "own_key_our_kid", "tampered_payload", "missing_jti", "garbage"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_forged_tokens_are_rejected(app, client, auth, attack):
    user, _ = auth.user_with_token()
    token = forged_tokens(app, user["id"])[attack]
    resp = client.get("/api/auth/profile", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, attack
    assert resp.get_json()["code"] in ("invalid_token", "token_expired")
    assert "WWW-Authenticate" in resp.headers


@pytest.mark.parametrize("attack", ["alg_none", "tampered_payload", "expired"])
def test_forged_cookie_is_rejected(app, client, auth, attack):
    user, _ = auth.user_with_token()
    client.set_cookie("sv_access", forged_tokens(app, user["id"])[attack])
    assert client.get("/api/auth/profile").status_code == 401


def test_bad_token_is_a_security_event(app, client, auth):
    from svcommon.db import query
    user, _ = auth.user_with_token()
    client.get("/api/auth/profile", headers={"Authorization": f"Bearer {forged_tokens(app, user['id'])['tampered_payload']}"})
    with app.app_context():
        with app.extensions["svcommon.db"].standalone() as conn:
            rows = query(conn, "SELECT kind FROM security_events WHERE ip = %s", (client.environ_base["HTTP_X_FORWARDED_FOR"],))
    assert [r["kind"] for r in rows] == ["bad_token"]


def test_token_claims_and_lifetime(app, auth):
    _, pair = auth.user_with_token()
    header = jwt.get_unverified_header(pair["access_token"])
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert header["alg"] == "ES256" and header["kid"]
    assert set(claims) >= {"iss", "aud", "sub", "role", "exp", "iat", "jti"}
    assert claims["exp"] - claims["iat"] == 300


def test_key_rotation_keeps_old_tokens_valid(app, client, auth):
    user, pair = auth.user_with_token()
    old_kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    ring = app.extensions["auth.keyring"]
    with app.app_context():
        with app.extensions["svcommon.db"].standalone() as conn:
            new_kid = ring.rotate(conn)
    assert new_kid != old_kid
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert {old_kid, new_kid} <= kids
    assert client.get("/api/auth/profile", headers={"Authorization": f"Bearer {pair['access_token']}"}).status_code == 200
    fresh = auth.login(user["username"]).get_json()["access_token"]
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
