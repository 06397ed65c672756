"""Hostile input in every field: a clear 4xx JSON error, no 500, nothing half-written."""
from __future__ import annotations

import uuid

import pytest

from auth_svc import password_policy
from svcommon.db import query

from tests.support.dpop import FINGERPRINT, DeviceKey

SQLI = ["' OR '1'='1", "admin'--", "x'; DROP TABLE users; --", "\" OR \"\"=\"", "1 UNION SELECT password_hash FROM users"]
OVERLONG = "a" * 10_000


@pytest.mark.parametrize("field", ["username", "email", "password"])
@pytest.mark.parametrize("value", SQLI + [OVERLONG, "", None, 123, ["x"], {"a": 1}, "\x00nul", "ü" * 40])
def test_register_rejects_bad_fields(app, client, auth, field, value):
    tag = uuid.uuid4().hex[:10]
    body = {"username": "ok_" + tag, "email": f"{tag}@example.test", "password": "a fine password"}
    body[field] = value
    resp = client.post("/api/auth/register", json=body)
    # A password the policy accepts is valid whatever it looks like (SQL-looking ones included):
    # it is stored hashed, never interpolated, and must work for login afterwards.
    with app.test_request_context():
        valid_password = (field == "password" and isinstance(value, str)
                          and password_policy.check(value, body["username"], body["email"]).ok)
    if valid_password:
        assert resp.status_code == 201
        assert auth.login(body["username"], value).status_code == 200
        return
    assert 400 <= resp.status_code < 500, (field, value, resp.status_code)
    assert set(resp.get_json()) <= {"error", "code", "fields"}
    # Looked up by the fields the test left valid: the bad one is what was sent, not stored.
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        assert query(conn, "SELECT COUNT(*) n FROM users WHERE username = %s OR email = %s",
                     ("ok_" + tag, f"{tag}@example.test"), one=True)["n"] == 0


@pytest.mark.parametrize("value", SQLI + [OVERLONG, "", None, 7])
def test_login_rejects_injection(client, auth, value):
    # A throwaway account: hammering the real admin would lock it for every later test.
    victim = auth.register()
    for body in ({"username": value, "password": "whatever it is"}, {"username": victim["username"], "password": value}):
        resp = client.post("/api/auth/login", json=body)
        assert resp.status_code in (400, 401), body
        assert "access_token" not in resp.get_json()


@pytest.mark.parametrize("raw", [b"not json", b"[1,2,3]", b'"string"', b"{", b"\xff\xfe"])
def test_malformed_json_bodies(client, raw):
    for path in ("/api/auth/register", "/api/auth/login"):
        resp = client.post(path, data=raw, content_type="application/json")
        assert resp.status_code == 400 and resp.get_json()["code"] == "invalid_json"


@pytest.mark.parametrize("fp", [{"user_agent": OVERLONG}, {"screen": SQLI[2] * 10}, {"timezone": 5}, "not-an-object"])
def test_device_fingerprint_validation(client, auth, fp):
    _, pair = auth.user_with_token()
    key = DeviceKey()
    resp = client.post("/api/auth/device-token", json={"fingerprint": fp},
                       headers={"Authorization": f"Bearer {pair['access_token']}",
                                "DPoP": key.proof("POST", "http://localhost/api/auth/device-token")})
    assert resp.status_code == 400


def test_sql_in_fingerprint_is_stored_as_text(client, auth):
    _, pair = auth.user_with_token()
    key = DeviceKey()
    fp = dict(FINGERPRINT, language="en'); DROP TABLE devices; --"[:35])
    resp = client.post("/api/auth/device-token", json={"fingerprint": fp},
                       headers={"Authorization": f"Bearer {pair['access_token']}",
                                "DPoP": key.proof("POST", "http://localhost/api/auth/device-token")})
    assert resp.status_code == 200
    devices = client.get("/api/devices", headers={"Authorization": f"Bearer {pair['access_token']}"}).get_json()["devices"]
    assert devices[0]["language"] == fp["language"]


def test_duplicate_registration_is_409(client, auth):
    user = auth.register()
    resp = client.post("/api/auth/register", json={"username": user["username"], "email": "new@example.test",
                                                   "password": "a fine password"})
    assert resp.status_code == 409
