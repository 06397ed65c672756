"""Forensic identifiers of a playback session, shared by streaming-svc (which embeds them)
and watermark-svc's forensics (which reads them back). Pure functions; no I/O.

Two layers (ARCHITECTURE.md "Forensics", docs/security.md "Forensic watermark"):

1. **A/B codeword** (survives re-encoding). Segment *i* of a session is served from variant
   A (bit 0) or B (bit 1), where::

       bit(i) = HMAC-SHA256(WATERMARK_SECRET, "codeword:" + session_id + ":" + str(i))[0] & 1

   ``session_id`` is the session's id string as issued (32 lowercase hex characters),
   ``i`` the 0-based segment index in decimal. The bit is derived, never stored: the
   detector recomputes the codeword of every session of a video from its id alone.
   Bits are independent and unbiased for anyone without the secret, so a viewer cannot
   tell which variant they got, and two sessions disagree on about half the positions.

2. **Metadata tag** (exact, for unmodified copies). streaming-svc appends one top-level
   ISO-BMFF ``uuid`` box to every init segment it serves (after ``moov``; players and
   ffprobe skip unknown top-level boxes). Layout, all integers big-endian::

       uint32 size (= 8 + 16 + 57 = 81) | "uuid" | TAG_UUID (16 bytes)
       | uint8 version (=1) | session id (16 raw bytes, the hex id decoded)
       | uint64 issued_at (Unix seconds) | MAC (32 bytes)

   ``MAC = HMAC-SHA256(WATERMARK_SECRET, "mdtag:v1:" || version || session || issued_at)``
   over the raw bytes, i.e. the box payload after TAG_UUID minus the MAC. A valid MAC
   proves the tag was written by us for that session (a copier cannot forge one for
   another session); verification is constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import struct
import time
import uuid
from dataclasses import dataclass

from .mp4boxes import walk_bytes

CODEWORD_PREFIX = "codeword:"
TAG_UUID = uuid.UUID("5f3c8f4e-6a1d-4c2b-9e57-5354564c5401").bytes   # "STVL" v1 in the tail
TAG_VERSION = 1
_MAC_PREFIX = b"mdtag:v1:"
_BODY = struct.Struct(">B16sQ")          # version, session id, issued_at
MAC_LEN = 32
TAG_BOX_SIZE = 8 + 16 + _BODY.size + MAC_LEN


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


# ---- layer 1: A/B codeword ----------------------------------------------------------------
def codeword_bit(secret: str | bytes, session_id: str, index: int) -> int:
    """0 → variant A, 1 → variant B for segment ``index`` of ``session_id``."""
    msg = f"{CODEWORD_PREFIX}{session_id}:{int(index)}".encode()
    return hmac.new(_key(secret), msg, hashlib.sha256).digest()[0] & 1


def codeword(secret: str | bytes, session_id: str, length: int) -> list[int]:
    return [codeword_bit(secret, session_id, i) for i in range(length)]


def variant(secret: str | bytes, session_id: str, index: int) -> str:
    """The object-key variant letter ("a" or "b") serving segment ``index``."""
    return "ab"[codeword_bit(secret, session_id, index)]


# ---- layer 2: metadata tag ------------------------------------------------------------------
@dataclass(frozen=True)
class Tag:
    session_id: str
    issued_at: int
    valid: bool          # MAC verified under the secret given to find_tags


def _mac(secret: str | bytes, body: bytes) -> bytes:
    return hmac.new(_key(secret), _MAC_PREFIX + body, hashlib.sha256).digest()


def build_tag_box(secret: str | bytes, session_id: str, issued_at: int | None = None) -> bytes:
    """The complete ``uuid`` box (TAG_BOX_SIZE bytes) for ``session_id``."""
    sid = bytes.fromhex(session_id)
    if len(sid) != 16:
        raise ValueError("session_id must be 32 hex characters")
    body = _BODY.pack(TAG_VERSION, sid, int(time.time() if issued_at is None else issued_at))
    return struct.pack(">I4s", TAG_BOX_SIZE, b"uuid") + TAG_UUID + body + _mac(secret, body)


def parse_tag_payload(secret: str | bytes, payload: bytes) -> Tag | None:
    """Parse the bytes after TAG_UUID; None if the layout is not ours."""
    if len(payload) != _BODY.size + MAC_LEN:
        return None
    body, mac = payload[:_BODY.size], payload[_BODY.size:]
    version, sid, issued = _BODY.unpack(body)
    if version != TAG_VERSION:
        return None
    return Tag(sid.hex(), issued, hmac.compare_digest(mac, _mac(secret, body)))


def find_tags(secret: str | bytes, data: bytes) -> list[Tag]:
    """Every StreamVault tag among the top-level boxes of an MP4 byte string (a stored
    copy may hold several: e.g. init segments of two renditions concatenated)."""
    tags = []
    for box in walk_bytes(data):
        if box.kind == b"uuid" and data[box.body:box.body + 16] == TAG_UUID:
            tag = parse_tag_payload(secret, data[box.body + 16:box.end])
            if tag is not None:
                tags.append(tag)
    return tags
