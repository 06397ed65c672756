"""A DPoP client key as a browser holds one (ECDSA P-256), for tests and the contract client."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

FINGERPRINT = {"user_agent": "pytest", "screen": "1920x1080", "timezone": "UTC", "language": "en-GB"}


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class DeviceKey:
    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))

    def proof(self, htm, htu, access_token=None, jti=None, iat=None, jwk=None, alg="ES256", typ="dpop+jwt"):
        claims = {"jti": jti or uuid.uuid4().hex, "htm": htm, "htu": htu,
                  "iat": int(iat if iat is not None else time.time())}
        if access_token:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        return jwt.encode(claims, self.private, algorithm=alg, headers={"typ": typ, "jwk": jwk or self.jwk})
