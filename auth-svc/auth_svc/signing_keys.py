"""Token signing keys (ES256). Persisted in the database, private halves encrypted with
AES-256-GCM under a key derived from AUTH_KEY_ENCRYPTION_SECRET, so every replica signs
with the same key and a restart does not log everybody out. Rotation makes a new key
active; retired keys stay in the JWKS until every token they signed has expired."""
from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm

from svcommon.dpop import jwk_thumbprint
from svcommon.timeutil import utcnow_naive

from . import repository as repo


def _wrap_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"streamvault/auth",
                info=b"signing-key-encryption/v1").derive(secret.encode())


def encrypt_private(pem: bytes, secret: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_wrap_key(secret)).encrypt(nonce, pem, b"signing-key")


def decrypt_private(blob: bytes, secret: str):
    pem = AESGCM(_wrap_key(secret)).decrypt(bytes(blob[:12]), bytes(blob[12:]), b"signing-key")
    return serialization.load_pem_private_key(pem, password=None)


def new_key_material(secret: str) -> tuple[str, bytes, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    kid = jwk_thumbprint(jwk)
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return kid, encrypt_private(pem, secret), json.dumps(jwk)


class KeyRing:
    """Cached view of signing_keys (refreshed every ``ttl`` seconds or on demand)."""

    def __init__(self, secret: str, token_ttl: int, ttl: float = 30.0):
        self.secret = secret
        self.token_ttl = token_ttl
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._active: tuple[str, object] | None = None
        self._published: list[dict] = []

    def ensure(self, conn) -> None:
        """Create the first key if there is none (serialised across replicas)."""
        repo.lock_signing_keys(conn)
        try:
            if not any(k["retired_at"] is None for k in repo.signing_keys(conn)):
                repo.insert_signing_key(conn, *new_key_material(self.secret))
                conn.commit()
        finally:
            repo.unlock_signing_keys(conn)
        self.reload(conn)

    def rotate(self, conn) -> str:
        repo.lock_signing_keys(conn)
        try:
            kid, enc, jwk = new_key_material(self.secret)
            repo.insert_signing_key(conn, kid, enc, jwk)
            repo.retire_keys_except(conn, kid)
            conn.commit()
        finally:
            repo.unlock_signing_keys(conn)
        self.reload(conn)
        return kid

    def reload(self, conn) -> None:
        rows = repo.signing_keys(conn)
        now = utcnow_naive()
        keep_until = timedelta(seconds=self.token_ttl + 60)
        active = next((r for r in rows if r["retired_at"] is None), None)
        published = [json.loads(r["public_jwk"]) for r in rows
                     if r["retired_at"] is None or now - r["retired_at"] < keep_until]
        with self._lock:
            self._active = (active["kid"], decrypt_private(active["private_key_enc"], self.secret)) if active else None
            self._published = published
            self._loaded_at = time.monotonic()

    def reload_if_older(self, conn, seconds: float) -> None:
        if time.monotonic() - self._loaded_at > seconds:
            self.reload(conn)

    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self.ttl

    def signing_key(self) -> tuple[str, object]:
        if self._active is None:
            raise RuntimeError("no active signing key")
        return self._active

    def jwks(self) -> dict:
        return {"keys": list(self._published)}
