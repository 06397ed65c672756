"""file-svc fixtures: the app on the session's real SeaweedFS, with a token verifier whose
signing key the tests hold (so they can mint service, user and expired tokens)."""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svcommon.jwks import JWKSVerifier, static_fetcher  # noqa: E402

from file_svc import create_app  # noqa: E402

KID = "test-kid"
_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwks() -> dict:
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(_KEY.public_key(), as_dict=True)
    return {"keys": [dict(jwk, kid=KID, use="sig", alg="ES256")]}


def mint(sub: str, role: str = "service", aud: str = "streamvault-internal", ttl: int = 300) -> str:
    now = int(time.time())
    claims = {"iss": "streamvault-auth", "aud": aud, "sub": sub, "role": role, "iat": now, "nbf": now,
              "exp": now + ttl, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, _KEY, algorithm="ES256", headers={"kid": KID})


def auth(service: str = "upload") -> dict:
    return {"Authorization": f"Bearer {mint('svc:' + service)}"}


def make_app(service_config: dict, **overrides):
    app = create_app({**service_config, "FILE_PART_SIZE": 5 * 1024 * 1024, **overrides})
    app.extensions["svcommon.verifier"] = JWKSVerifier(static_fetcher(_jwks()), "streamvault-auth", "streamvault")
    return app


@pytest.fixture(name="auth")
def auth_fixture():
    """auth(service) -> headers with a fresh service token for that service."""
    return auth


@pytest.fixture(name="mint")
def mint_fixture():
    return mint


@pytest.fixture(name="make_app")
def make_app_fixture(service_config):
    return lambda **overrides: make_app(service_config, **overrides)


@pytest.fixture
def app(service_config):
    return make_app(service_config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def s3(app):
    """The raw boto3 client + bucket, to check what really is in S3."""
    store = app.extensions["file.s3"]
    store.ensure_bucket()
    return store


@pytest.fixture
def vid():
    """A fresh id so tests never see each other's objects."""
    return uuid.uuid4().hex
