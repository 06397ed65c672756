"""Forensic identifiers of a playback session, shared by streaming-svc (which embeds them)
and watermark-svc's forensics (which reads them back). Pure functions; no I/O.

Two layers (ARCHITECTURE.md "Forensics", docs/security.md "Forensic watermark"):

1. **A/B codeword** (survives re-encoding). Segment *i* of a session is served from variant
   A (bit 0) or B (bit 1). The bit is derived, never stored: the detector recomputes the
   codeword of every session of a video from its id alone. ``session_id`` is the session's
   id string as issued (32 lowercase hex characters), ``i`` the 0-based segment index in
   decimal. Two constructions (the video's processing metadata names its scheme, as
   ``"codeword": {"scheme": ...}``; a video without it uses ``uniform``):

   ``uniform`` (videos under TARDOS_MIN_SEGMENTS segments)::

       bit(i) = HMAC-SHA256(WATERMARK_SECRET, "codeword:" + session_id + ":" + str(i))[0] & 1

   Unbiased and independent bits: two sessions disagree on about half the positions. Against
   two colluders this is the best binary code (each colluder agrees with any mix of their
   streams on ~3/4 of the segments), but three colluders voting by minority leave every
   colluder at chance, so it cannot resist larger coalitions.

   ``tardos-n3`` (videos of TARDOS_MIN_SEGMENTS segments or more): a discrete symmetric Tardos
   code with Nuida et al.'s bias distribution for coalitions of up to three (the two points
   (1 -+ 1/sqrt 3) / 2, equally likely). Position i of video v has a secret bias::

       p(i) = BIAS_LOW / 2^32   if HMAC-SHA256(secret, "tardos-bias:" + v + ":" + str(i))[0] & 1 == 0
            = 1 - BIAS_LOW / 2^32                                                     otherwise
       bit(i) = 1  iff  uint32_be(HMAC-SHA256(secret, "tardos:" + session_id + ":" + str(i))[0:4])
                        < 2^32 * p(i)

   so P(bit = 1) is exactly p(i). Any coalition of up to three then leaves a colluder with a
   score above chance under every mixing strategy (watermark-svc forensics/scoring.py), at
   the price of about 1.5x the footage to name two colluders than the uniform code needs.
   That is why short videos, where a clip cannot hold enough segments to catch three, keep
   the uniform code.

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

import functools
import hashlib
import hmac
import struct
import time
import uuid
from dataclasses import dataclass

from .mp4boxes import walk_bytes

CODEWORD_PREFIX = "codeword:"
UNIFORM = "uniform"
TARDOS = "tardos-n3"
SCHEMES = (UNIFORM, TARDOS)
# Twenty minutes of 2-s segments: a video shorter than that cannot hold the footage that naming
# three colluders takes (all three were named from 20-25 minutes of a re-encoded copy among a
# thousand sessions: bench/results/forensics-collusion.md), so it keeps the code that is best
# against two. The rule is fixed, not a setting: a video's scheme must never change once
# sessions were served.
TARDOS_MIN_SEGMENTS = 600
BIAS_LOW = 907633386          # round(2^32 * (1 - 1/sqrt(3)) / 2): P(bit 1) at a low-bias position
_TARDOS_PREFIX = "tardos:"
_BIAS_PREFIX = "tardos-bias:"
TAG_UUID = uuid.UUID("5f3c8f4e-6a1d-4c2b-9e57-5354564c5401").bytes   # "STVL" v1 in the tail
TAG_VERSION = 1
_MAC_PREFIX = b"mdtag:v1:"
_BODY = struct.Struct(">B16sQ")          # version, session id, issued_at
MAC_LEN = 32
TAG_BOX_SIZE = 8 + 16 + _BODY.size + MAC_LEN


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


# ---- layer 1: A/B codeword ----------------------------------------------------------------
@dataclass(frozen=True)
class Code:
    """A video's codeword construction: its scheme and (for the Tardos biases) its id."""
    scheme: str = UNIFORM
    video_id: str = ""

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown codeword scheme {self.scheme!r}")
        if self.scheme == TARDOS and not self.video_id:
            raise ValueError("a Tardos code needs the video id")

    @classmethod
    def of_metadata(cls, video_id: str, meta: dict) -> "Code":
        """The code named by a video's processing metadata (uniform when it names none)."""
        return cls(scheme_of(meta), video_id)


def scheme_of(meta: dict) -> str:
    """The scheme a video's processing metadata names (uniform when it names none: videos
    processed before there was a choice)."""
    return (meta.get("codeword") or {}).get("scheme", UNIFORM)


UNIFORM_CODE = Code()


def scheme_for(segment_count: int) -> str:
    """The scheme processing gives a video of this many segments."""
    return TARDOS if segment_count >= TARDOS_MIN_SEGMENTS else UNIFORM


@functools.lru_cache(maxsize=8)
def _keyed(secret: str | bytes):
    """HMAC-SHA256 keyed with ``secret``, never updated itself: each message gets a copy
    (keying costs about a third of a short message's HMAC, and a key request asks for 16, a
    manifest or a detection for every index)."""
    return hmac.new(_key(secret), digestmod=hashlib.sha256)


def _hmac(secret: str | bytes, msg: str) -> bytes:
    h = _keyed(secret).copy()
    h.update(msg.encode())
    return h.digest()


def bias_threshold(secret: str | bytes, code: Code, index: int) -> int:
    """2^32 * P(bit 1) at segment ``index``: exact, an integer (2^31 for the uniform code)."""
    if code.scheme == UNIFORM:
        return 1 << 31
    return _tardos_threshold(secret, code.video_id, int(index))


@functools.lru_cache(maxsize=1 << 16)
def _tardos_threshold(secret: str | bytes, video_id: str, index: int) -> int:
    # Shared by every session of the video: a manifest of a long video asks for thousands.
    low = _hmac(secret, f"{_BIAS_PREFIX}{video_id}:{index}")[0] & 1 == 0
    return BIAS_LOW if low else (1 << 32) - BIAS_LOW


def codeword_bit(secret: str | bytes, session_id: str, index: int, code: Code = UNIFORM_CODE) -> int:
    """0 → variant A, 1 → variant B for segment ``index`` of ``session_id``."""
    return codeword_bits(secret, session_id, (index,), code)[0]


def codeword_bits(secret: str | bytes, session_id: str, indices, code: Code = UNIFORM_CODE) -> list[int]:
    """codeword_bit of each of ``indices``, in order."""
    if code.scheme == UNIFORM:
        return [d[0] & 1 for _, d in _digests(secret, f"{CODEWORD_PREFIX}{session_id}:", indices)]
    return [int(int.from_bytes(d[:4], "big") < _tardos_threshold(secret, code.video_id, i))
            for i, d in _digests(secret, f"{_TARDOS_PREFIX}{session_id}:", indices)]


def _digests(secret: str | bytes, prefix: str, indices):
    """(index, HMAC-SHA256(secret, prefix + decimal index)) for each of ``indices``."""
    for i in indices:
        yield int(i), _hmac(secret, f"{prefix}{int(i)}")


def codeword(secret: str | bytes, session_id: str, length: int, code: Code = UNIFORM_CODE) -> list[int]:
    return codeword_bits(secret, session_id, range(length), code)


def variant(secret: str | bytes, session_id: str, index: int, code: Code = UNIFORM_CODE) -> str:
    """The object-key variant letter ("a" or "b") serving segment ``index``."""
    return "ab"[codeword_bit(secret, session_id, index, code)]


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
