"""Device-bound tokens (RFC 9449): the proof must come from the bound key, once, fresh,
for this method and URL, and carry the token's hash."""
from __future__ import annotations

import time

import jwt
import pytest

from tests.support.dpop import FINGERPRINT, DeviceKey

PROFILE = "http://localhost/api/auth/profile"


def _profile(client, token, proof):
    return client.get("/api/auth/profile", headers={"Authorization": f"DPoP {token}", "DPoP": proof})


def test_device_token_is_bound_and_works(client, device_token):
    key, body = device_token()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert body["token_type"] == "DPoP"
    from svcommon.dpop import jwk_thumbprint
    assert claims["cnf"]["jkt"] == jwk_thumbprint(key.jwk)
    assert claims["did"] == body["device_id"]
    resp = _profile(client, body["access_token"], key.proof("GET", PROFILE, body["access_token"]))
    assert resp.status_code == 200, resp.get_json()


def test_same_key_same_device_and_fingerprint_recorded(client, auth, device_token):
    _, pair = auth.user_with_token()
    key = DeviceKey()
    _, first = device_token(pair["access_token"], key)
    _, second = device_token(pair["access_token"], key)
    assert first["device_id"] == second["device_id"]
    devices = client.get("/api/devices", headers={"Authorization": f"Bearer {pair['access_token']}"}).get_json()["devices"]
    assert len(devices) == 1 and devices[0]["screen"] == FINGERPRINT["screen"] and devices[0]["timezone"] == "UTC"


def attacks(key, token):
    other = DeviceKey()
    return {
        "other_devices_key": other.proof("GET", PROFILE, token),
        "stale_iat": key.proof("GET", PROFILE, token, iat=time.time() - 600),
        "future_iat": key.proof("GET", PROFILE, token, iat=time.time() + 600),
        "wrong_htm": key.proof("POST", PROFILE, token),
        "wrong_htu": key.proof("GET", "http://localhost/api/devices", token),
        "other_host_htu": key.proof("GET", "https://evil.example/api/auth/profile", token),
        "missing_ath": key.proof("GET", PROFILE),
        "ath_of_other_token": key.proof("GET", PROFILE, token + "x"),
        "wrong_typ": key.proof("GET", PROFILE, token, typ="JWT"),
        "no_proof": "",
    }


@pytest.mark.parametrize("attack", ["other_devices_key", "stale_iat", "future_iat", "wrong_htm", "wrong_htu",
                                    "other_host_htu", "missing_ath", "ath_of_other_token", "wrong_typ", "no_proof"])
def test_bad_proofs_are_rejected(client, device_token, attack):
    key, body = device_token()
    resp = _profile(client, body["access_token"], attacks(key, body["access_token"])[attack])
    assert resp.status_code == 401, attack
    assert resp.get_json()["code"] == "invalid_dpop_proof"


def test_replayed_proof_is_rejected(client, device_token):
    key, body = device_token()
    proof = key.proof("GET", PROFILE, body["access_token"])
    assert _profile(client, body["access_token"], proof).status_code == 200
    replay = _profile(client, body["access_token"], proof)
    assert replay.status_code == 401 and replay.get_json()["code"] == "dpop_replay"


def test_stolen_device_token_used_as_bearer_is_rejected(client, device_token):
    _, body = device_token()
    resp = client.get("/api/auth/profile", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert resp.status_code == 401


def test_plain_token_presented_as_dpop_is_rejected(client, auth):
    _, pair = auth.user_with_token()
    key = DeviceKey()
    resp = _profile(client, pair["access_token"], key.proof("GET", PROFILE, pair["access_token"]))
    assert resp.status_code == 401


def test_device_token_needs_a_valid_proof(client, auth):
    _, pair = auth.user_with_token()
    key = DeviceKey()
    private_jwk = dict(key.jwk, d="AAAA")
    for proof in ["", "a.b.c", key.proof("POST", "http://localhost/api/other"),
                  key.proof("POST", "http://localhost/api/auth/device-token", jwk=private_jwk)]:
        resp = client.post("/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                           headers={"Authorization": f"Bearer {pair['access_token']}", "DPoP": proof})
        assert resp.status_code == 401, proof


def test_revoked_device_cannot_get_tokens(client, auth, device_token):
    _, pair = auth.user_with_token()
    key = DeviceKey()
    _, body = device_token(pair["access_token"], key)
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert client.delete(f"/api/devices/{body['device_id']}", headers=bearer).status_code == 204
    resp = client.post("/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                       headers={**bearer, "DPoP": key.proof("POST", "http://localhost/api/auth/device-token")})
    assert resp.status_code == 403 and resp.get_json()["code"] == "device_revoked"


def test_cannot_revoke_another_users_device(client, auth, device_token):
    _, body = device_token()
    _, intruder = auth.user_with_token()
    resp = client.delete(f"/api/devices/{body['device_id']}", headers={"Authorization": f"Bearer {intruder['access_token']}"})
    assert resp.status_code == 404


def test_device_token_in_the_access_cookie_needs_a_proof(client, device_token):
    """The cookie branch once accepted a device-bound token without any proof (issue #11)."""
    key, body = device_token()
    client.set_cookie("sv_access", body["access_token"])
    refused = client.get("/api/auth/profile")
    assert refused.status_code == 401 and refused.get_json()["code"] == "invalid_dpop_proof"
    # Consistent rule: with a valid proof from its key, the transport does not matter.
    ok = client.get("/api/auth/profile", headers={"DPoP": key.proof("GET", PROFILE, body["access_token"])})
    assert ok.status_code == 200


def test_device_token_renewal_verifies_the_proof_once(client, device_token):
    key, body = device_token()
    url = "http://localhost/api/auth/device-token"
    resp = client.post("/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                       headers={"Authorization": f"DPoP {body['access_token']}",
                                "DPoP": key.proof("POST", url, body["access_token"])})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["device_id"] == body["device_id"]
    other = DeviceKey()
    resp = client.post("/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                       headers={"Authorization": f"DPoP {body['access_token']}",
                                "DPoP": other.proof("POST", url, body["access_token"])})
    assert resp.status_code == 401


@pytest.mark.parametrize("skew,status", [(1, 200), (59, 200), (61, 401), (-61, 401)])
def test_proof_iat_window_is_symmetric(client, device_token, skew, status):
    import math
    key, body = device_token()
    inside = abs(skew) < 60
    iat = (math.floor if (skew > 0) == inside else math.ceil)(time.time()) + skew
    assert _profile(client, body["access_token"], key.proof("GET", PROFILE, body["access_token"], iat=iat)).status_code == status
