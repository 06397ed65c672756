"""Verified access tokens are remembered per process (svcommon.jwks): a token seen again costs
no signature check, but never past its expiry, and callers get their own copy of the claims."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from svcommon import jwks
from svcommon.jwks import JWKSVerifier, TokenError


@pytest.fixture
def signer():
    key = ec.generate_private_key(ec.SECP256R1())
    public = dict(json.loads(ECAlgorithm.to_jwk(key.public_key())), kid="k1")
    fetches = []

    def fetch():
        fetches.append(1)
        return {"keys": [public]}

    def token(ttl: int = 300) -> str:
        now = int(time.time())
        return jwt.encode({"sub": "u1", "iss": "sv", "aud": "sv-api", "iat": now, "exp": now + ttl,
                           "jti": uuid.uuid4().hex}, key, algorithm="ES256", headers={"kid": "k1"})
    return JWKSVerifier(fetch, "sv", "sv-api"), token


def _count_checks(verifier, monkeypatch) -> list:
    """Every full verification (header, key, ECDSA signature, claims) the verifier runs."""
    checks, real = [], verifier._verify

    def counted(token, audience):
        checks.append(token)
        return real(token, audience)
    monkeypatch.setattr(verifier, "_verify", counted)
    return checks


def test_a_token_seen_again_is_not_verified_again(signer, monkeypatch):
    verifier, token = signer
    checks = _count_checks(verifier, monkeypatch)
    t, other = token(), token()
    assert verifier.verify(t)["sub"] == verifier.verify(t)["sub"] == "u1"
    assert checks == [t]                              # one signature check for two uses
    verifier.verify(other)
    verifier.verify(t, audience="sv-api")            # another audience asked: checked for it
    assert checks == [t, other, t]


def test_claims_are_remembered_as_copies(signer):
    verifier, token = signer
    t = token()
    first = verifier.verify(t)
    first["sub"] = "someone else"
    assert verifier.verify(t)["sub"] == "u1"
    with pytest.raises(TokenError):
        verifier.verify(t[:-2] + ("AA" if not t.endswith("AA") else "BB"))   # another string: verified afresh


def test_a_remembered_token_is_refused_once_it_expires(signer, monkeypatch):
    verifier, token = signer
    t = token(ttl=60)
    assert verifier.verify(t)["sub"] == "u1"
    later, real_monotonic = time.time() + 3600, time.monotonic

    class Clock:                    # an hour later, for the cache and for PyJWT's exp check
        time = staticmethod(lambda: later)
        monotonic = staticmethod(real_monotonic)

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.fromtimestamp(later, tz)

    checks = _count_checks(verifier, monkeypatch)
    monkeypatch.setattr(jwks, "time", Clock)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    with pytest.raises(TokenError) as err:
        verifier.verify(t)
    assert err.value.code == "token_expired" and checks == [t]      # checked afresh, and refused
