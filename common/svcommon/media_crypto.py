"""Delivery v2 content cryptography (docs/api.md, "Encrypted media"): media segments are
encrypted once, at processing time, and stored only as ciphertext; playback sessions get
*keys*, never per-session re-encrypted bytes. Shared by the media workers (which encrypt
and name the objects), streaming-svc (which names them in manifests and releases keys)
and the tests' contract client (which decrypts from the contract alone).

Per video, one random 256-bit *content secret*, stored sealed under MEDIA_MASTER_KEY
(``ContentSealer``; AAD binds the video id). From it, all HKDF-SHA256 / HMAC-SHA256::

    segment key  = HKDF(ikm=secret, salt=video_id, info="streamvault/segkey/v1:{track}:{variant}:{index}", 32)
                   track "video" (variant "a"|"b", shared by every rendition of that index)
                   or "audio" (variant "-": audio is not watermarked)
    object name  = hex(HMAC(secret, "streamvault/name/v1:{rendition}:{variant}:{index}")[:16])
    file name    = "{index:05d}-{object name}.m4s"

    stored body  = nonce(12) ‖ AES-256-GCM(segment key, nonce, plaintext,
                                           aad="streamvault/seg/v1:{video_id}:{rendition}:{index}") ‖ tag(16)

A session receives the keys of its own variants only, each wrapped under the session's
content-encryption key (CEK) of a key epoch::

    wrapped key  = AES-256-GCM(CEK, nonce, segment key, aad="streamvault/segkey/v1:{session_id}:{track}:{index}")

Names are keyed, so a URL says nothing about its variant, and are the same for every
session whose codeword picks that variant: the ciphertext is cacheable by anyone (the
gateway, a CDN) and useless without a key.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_LEN = 12
TAG_LEN = 16
SECRET_LEN = 32
VIDEO, AUDIO = "video", "audio"
AUDIO_VARIANT = "-"
SEALER_INFO = b"streamvault/media-master/v1"
# "00042-0123456789abcdef0123456789abcdef.m4s": the only shape a stored segment name has.
FILE_NAME_RE = re.compile(r"^([0-9]{5})-([0-9a-f]{32})\.m4s$")   # [0-9]: \d takes any script's digits


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def track_of(rendition: str) -> str:
    return AUDIO if rendition == AUDIO else VIDEO


def segment_aad(video_id: str, rendition: str, index: int) -> bytes:
    return f"streamvault/seg/v1:{video_id}:{rendition}:{int(index)}".encode()


def key_wrap_aad(session_id: str, track: str, index: int) -> bytes:
    return f"streamvault/segkey/v1:{session_id}:{track}:{int(index)}".encode()


@dataclass(frozen=True)
class VideoKeys:
    """Everything derived from one video's content secret."""
    video_id: str
    secret: bytes

    def segment_key(self, track: str, variant: str, index: int) -> bytes:
        if track == AUDIO:
            variant = AUDIO_VARIANT
        info = f"streamvault/segkey/v1:{track}:{variant}:{int(index)}".encode()
        return _hkdf(self.secret, self.video_id.encode(), info)

    def object_name(self, rendition: str, variant: str, index: int) -> str:
        if rendition == AUDIO:
            variant = AUDIO_VARIANT
        msg = f"streamvault/name/v1:{rendition}:{variant}:{int(index)}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).digest()[:16].hex()

    def file_name(self, rendition: str, variant: str, index: int) -> str:
        return f"{int(index):05d}-{self.object_name(rendition, variant, index)}.m4s"

    def encrypt(self, rendition: str, variant: str, index: int, plaintext: bytes) -> bytes:
        key = self.segment_key(track_of(rendition), variant, index)
        nonce = os.urandom(NONCE_LEN)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, segment_aad(self.video_id, rendition, index))


def decrypt_segment(key: bytes, video_id: str, rendition: str, index: int, body: bytes) -> bytes:
    """Raises cryptography.exceptions.InvalidTag for a wrong key, rendition, index or video."""
    return AESGCM(key).decrypt(body[:NONCE_LEN], body[NONCE_LEN:], segment_aad(video_id, rendition, index))


def wrap_segment_key(cek: AESGCM, session_id: str, track: str, index: int, key: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext‖tag) of one segment key for one session."""
    nonce = os.urandom(NONCE_LEN)
    return nonce, cek.encrypt(nonce, key, key_wrap_aad(session_id, track, index))


def unwrap_segment_key(cek: bytes, session_id: str, track: str, index: int, nonce: bytes, wrapped: bytes) -> bytes:
    return AESGCM(cek).decrypt(nonce, wrapped, key_wrap_aad(session_id, track, index))


class SecretSealer:
    """Seals a secret the server must recover (not a password: it is used again) under a
    master key for the database: AES-256-GCM with a key derived per purpose (``info``), the
    nonce in front, ``aad`` naming the row it belongs to (a sealed value copied to another
    row does not open)."""

    def __init__(self, master_secret: str, info: bytes):
        self._aead = AESGCM(_hkdf(master_secret.encode(), b"", info))

    def seal(self, secret: bytes, aad: str) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, secret, aad.encode())

    def open(self, sealed: bytes, aad: str) -> bytes:
        return self._aead.decrypt(bytes(sealed[:NONCE_LEN]), bytes(sealed[NONCE_LEN:]), aad.encode())


class ContentSealer:
    """Seals each video's content secret under MEDIA_MASTER_KEY for the database."""

    def __init__(self, master_secret: str):
        self._sealer = SecretSealer(master_secret, SEALER_INFO)

    def new_secret(self, video_id: str) -> tuple[VideoKeys, bytes]:
        """A fresh content secret and its sealed form (what video_media.content_secret_enc holds)."""
        secret = os.urandom(SECRET_LEN)
        return VideoKeys(video_id, secret), self.seal(secret, video_id)

    def seal(self, secret: bytes, video_id: str) -> bytes:
        return self._sealer.seal(secret, f"content-secret:{video_id}")

    def open(self, sealed: bytes, video_id: str) -> VideoKeys:
        return VideoKeys(video_id, self._sealer.open(sealed, f"content-secret:{video_id}"))
