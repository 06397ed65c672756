"""RFC 7638 thumbprint and DPoP proof checks that need no server."""
from __future__ import annotations

import pytest

from svcommon.dpop import jwk_thumbprint, verify_proof
from svcommon.jwks import TokenError
from tests.support.dpop import DeviceKey


def test_rfc7638_example_thumbprint_shape():
    # RFC 7638 §3.1 gives an RSA example; for EC we check determinism and member selection.
    key = DeviceKey()
    noisy = dict(key.jwk, kid="ignored", use="sig", alg="ES256")
    assert jwk_thumbprint(key.jwk) == jwk_thumbprint(noisy)
    assert len(jwk_thumbprint(key.jwk)) == 43
    assert jwk_thumbprint(key.jwk) != jwk_thumbprint(DeviceKey().jwk)


def test_replay_check_is_called_with_jti():
    key = DeviceKey()
    seen = []
    verify_proof(key.proof("GET", "http://h/x?q=1", jti="jti-0123456789"), htm="GET", htu="http://h/x",
                 replay_check=lambda jti, age: seen.append(jti))
    assert seen == ["jti-0123456789"]


@pytest.mark.parametrize("jti", ["short", "x" * 300])
def test_bad_jti_lengths(jti):
    key = DeviceKey()
    with pytest.raises(TokenError):
        verify_proof(key.proof("GET", "http://h/x", jti=jti), htm="GET", htu="http://h/x")


def test_hs256_proof_is_refused():
    import jwt
    key = DeviceKey()
    forged = jwt.encode({"jti": "j" * 10, "htm": "GET", "htu": "http://h/x", "iat": 0}, "s" * 32, algorithm="HS256",
                        headers={"typ": "dpop+jwt", "jwk": key.jwk})
    with pytest.raises(TokenError):
        verify_proof(forged, htm="GET", htu="http://h/x")


def _at(skew: int, max_age: int = 60) -> int:
    """An integer iat ``skew`` s from now, rounded so the real skew at verification is never
    nearer the window's edge than asked (inside: towards now; outside: away from now)."""
    import math
    import time
    inside = abs(skew) < max_age
    return (math.floor if (skew > 0) == inside else math.ceil)(time.time()) + skew


@pytest.mark.parametrize("skew", [1, 59, -59])
def test_clock_skew_within_the_window_is_accepted(skew):
    """PyJWT's own iat check (no leeway) once refused a client clock 1 s ahead."""
    key = DeviceKey()
    verify_proof(key.proof("GET", "http://h/x", iat=_at(skew)), htm="GET", htu="http://h/x", max_age=60)


@pytest.mark.parametrize("skew", [61, -61])
def test_clock_skew_outside_the_window_is_refused(skew):
    key = DeviceKey()
    with pytest.raises(TokenError) as err:
        verify_proof(key.proof("GET", "http://h/x", iat=_at(skew)), htm="GET", htu="http://h/x", max_age=60)
    assert err.value.code == "invalid_dpop_proof"


def test_ath_must_match_the_access_token():
    key = DeviceKey()
    verify_proof(key.proof("GET", "http://h/x", access_token="token-a"), htm="GET", htu="http://h/x",
                 access_token="token-a")
    for proof in (key.proof("GET", "http://h/x", access_token="token-b"), key.proof("GET", "http://h/x")):
        with pytest.raises(TokenError) as err:
            verify_proof(proof, htm="GET", htu="http://h/x", access_token="token-a")
        assert "ath" in err.value.reason


@pytest.mark.parametrize("change", [{"x": ["a", "b"]}, {"y": {"n": 1}}, {"x": 7}, {"kty": "RSA"}, {"y": None}])
def test_a_malformed_jwk_is_a_refused_proof_not_a_crash(change):
    """Parsed keys are cached per point: members that are not strings (unhashable, or not a
    point at all) are refused before the cache sees them."""
    key = DeviceKey()
    with pytest.raises(TokenError) as err:
        verify_proof(key.proof("GET", "http://h/x", jwk={**key.jwk, **change}), htm="GET", htu="http://h/x")
    assert err.value.code == "invalid_dpop_proof"


def test_parsed_device_keys_are_reused():
    from svcommon import dpop
    key, other = DeviceKey(), DeviceKey()
    before = dpop._public_key.cache_info()
    for _ in range(3):
        verify_proof(key.proof("GET", "http://h/x"), htm="GET", htu="http://h/x")
    verify_proof(other.proof("GET", "http://h/x"), htm="GET", htu="http://h/x")
    after = dpop._public_key.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (2, 2)


def _tampered(proof: str, part: int, edit) -> str:
    parts = proof.split(".")
    parts[part] = edit(parts[part])
    return ".".join(parts)


def _b64(obj: dict) -> str:
    import base64
    import json
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("case", ["payload changed", "signature from another key", "signature truncated",
                                  "signature padded", "junk in signature", "junk in header", "header not an object",
                                  "deeply nested header", "critical header", "claims missing"])
def test_a_proof_is_checked_as_a_strict_es256_jws(case):
    """The proof is parsed without PyJWT (dpop.py says why): every way a compact JWS can be
    wrong is a refused proof (TokenError), never accepted and never a crash."""
    import base64
    import json

    import jwt
    key, url = DeviceKey(), "http://h/x"
    good = key.proof("GET", url)
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    verify_proof(good, htm="GET", htu=url)                       # the control: accepted
    other = DeviceKey().proof("GET", url)
    proof = {
        "payload changed": lambda: _tampered(good, 1, lambda _: _b64({**claims, "htm": "GET", "jti": "other-jti-123"})),
        "signature from another key": lambda: _tampered(good, 2, lambda _: other.split(".")[2]),
        "signature truncated": lambda: _tampered(good, 2, lambda sig: sig[:-4]),
        "signature padded": lambda: _tampered(good, 2, lambda sig: sig + "="),
        "junk in signature": lambda: _tampered(good, 2, lambda sig: sig[:-2] + "!!"),
        "junk in header": lambda: _tampered(good, 0, lambda h: h + "*"),
        "header not an object": lambda: _tampered(good, 0, lambda _: base64.urlsafe_b64encode(b"[1]").decode()),
        "deeply nested header": lambda: _tampered(good, 0, lambda _: base64.urlsafe_b64encode(
            b"[" * 100000 + b"]" * 100000).rstrip(b"=").decode()),
        "critical header": lambda: jwt.encode(claims, key.private, algorithm="ES256",
                                              headers={**header, "crit": ["exp"], "exp": 1}),
        "claims missing": lambda: _tampered(good, 1, lambda _: _b64({"htm": "GET", "htu": url})),
    }[case]()
    with pytest.raises(TokenError) as err:
        verify_proof(proof, htm="GET", htu=url)
    assert err.value.code == "invalid_dpop_proof"
