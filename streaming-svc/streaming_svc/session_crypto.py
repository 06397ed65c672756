"""Session cryptography (docs/api.md, streaming-svc: the key derivation is a contract).

    shared      = ECDH(P-256)(server ephemeral private, client public)
    KEK         = HKDF-SHA256(ikm=shared, salt=session_id bytes, info="streamvault/kek/v1", 32 bytes)
    wrapped_cek = AES-256-GCM(KEK, nonce, CEK, aad=session_id)

The CEK of each key epoch wraps the session's segment keys (keys.py,
svcommon.media_crypto.wrap_segment_key); media itself is encrypted once, not per session.

The server's ephemeral private key lives only inside ``open_session`` (forward secrecy: a
later database or master-key leak cannot recompute any KEK from recorded handshakes).
The KEK and CEKs are kept sealed under STREAM_MASTER_KEY so every replica can serve the
session and wrap the next epoch's CEK for heartbeats. Everything here uses ``cryptography``.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from svcommon.dpop import b64url, b64url_decode     # JWK coordinates are base64url as in DPoP

KEK_INFO = b"streamvault/kek/v1"
MASTER_INFO = b"streamvault/stream-master/v1"
NONCE_LEN = 12


class KeyExchangeError(ValueError):
    """The client's public key is not an acceptable P-256 JWK."""


def _coord(jwk: dict, name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or len(value) > 64:
        raise KeyExchangeError(f"client_public_key.{name} must be a base64url string")
    try:
        raw = b64url_decode(value)
    except (ValueError, TypeError) as exc:
        raise KeyExchangeError(f"client_public_key.{name} is not base64url") from exc
    if len(raw) != 32:
        raise KeyExchangeError(f"client_public_key.{name} must be 32 bytes")
    return int.from_bytes(raw, "big")


def public_key_from_jwk(jwk) -> ec.EllipticCurvePublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise KeyExchangeError("client_public_key must be an EC P-256 JWK")
    if "d" in jwk:
        raise KeyExchangeError("client_public_key must not contain a private key")
    try:   # cryptography rejects points that are not on the curve (invalid-curve attacks)
        return ec.EllipticCurvePublicNumbers(_coord(jwk, "x"), _coord(jwk, "y"), ec.SECP256R1()).public_key()
    except ValueError as exc:
        raise KeyExchangeError("client_public_key is not a point on P-256") from exc


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict:
    n = key.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}


def derive_kek(shared: bytes, session_id: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=session_id.encode(), info=KEK_INFO).derive(shared)


def wrap_cek(kek: bytes, cek: bytes, session_id: str) -> dict:
    nonce = os.urandom(NONCE_LEN)
    ct = AESGCM(kek).encrypt(nonce, cek, session_id.encode())
    return {"nonce": b64url(nonce), "ciphertext": b64url(ct)}


@dataclass
class Handshake:
    server_public_key: dict
    kek: bytes
    cek: bytes
    wrapped_cek: dict


def open_session(client_jwk, session_id: str) -> Handshake:
    """Ephemeral ECDH with the client's key; a fresh random CEK wrapped under the KEK."""
    client = public_key_from_jwk(client_jwk)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    server_pub = public_jwk(ephemeral.public_key())
    kek = derive_kek(ephemeral.exchange(ec.ECDH(), client), session_id)
    del ephemeral                      # never stored, never logged
    cek = AESGCM.generate_key(bit_length=256)
    return Handshake(server_pub, kek, cek, wrap_cek(kek, cek, session_id))


def new_cek() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class MasterKey:
    """Seals session keys at rest; the AAD ties each sealed value to its session and role,
    so a sealed CEK cannot be swapped into another session's row."""

    def __init__(self, secret: str):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MASTER_INFO).derive(secret.encode())
        self._aead = AESGCM(key)
        self._url_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                             info=b"streamvault/media-url/v1").derive(secret.encode())

    def media_token(self, session_id: str) -> str:
        """The unguessable part of a session's manifest and init URLs: knowing a session id
        (logs, the security page) is not enough to fetch its manifest or tagged init segments."""
        return b64url(hmac.new(self._url_key, session_id.encode(), hashlib.sha256).digest()[:16])

    def media_token_ok(self, session_id: str, token: str) -> bool:
        return hmac.compare_digest(self.media_token(session_id).encode(), token.encode())

    def seal(self, value: bytes, session_id: str, role: str) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, value, f"{session_id}:{role}".encode())

    def open(self, sealed: bytes, session_id: str, role: str) -> bytes:
        return self._aead.decrypt(bytes(sealed[:NONCE_LEN]), bytes(sealed[NONCE_LEN:]),
                                  f"{session_id}:{role}".encode())
