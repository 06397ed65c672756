"""The exact layer: StreamVault's MAC'd session tag in the container metadata.

streaming-svc puts a top-level ISO-BMFF `uuid` box in every init segment it serves
(format in svcommon.codeword). An unmodified copy still has it. We walk the file's
top-level boxes with seeks (a multi-GB suspect is never read whole), hand our uuid
boxes to svcommon.codeword for parsing and MAC verification, and keep the verified
ones. A box with a bad MAC is reported (someone edited it) but never trusted.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from svcommon import codeword as cw

MAX_BOXES = 100_000          # a fragmented MP4 has 2 boxes per segment; bound the walk


@dataclass(frozen=True)
class TagFinding:
    session_id: str
    issued_at: int
    valid: bool


def find_tags(path: str, secret: bytes) -> list[TagFinding]:
    found: list[TagFinding] = []
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        end = fh.tell()
        pos = 0
        for _ in range(MAX_BOXES):
            if pos + 8 > end:
                break
            fh.seek(pos)
            header = fh.read(16)
            size, kind = struct.unpack_from(">I4s", header, 0)
            hlen = 8
            if size == 1 and len(header) >= 16:
                size, hlen = struct.unpack_from(">Q", header, 8)[0], 16
            elif size == 0:
                size = end - pos
            if size < hlen or pos + size > end or not kind.isascii():
                break                               # not (or no longer) an ISO-BMFF file
            if kind == b"uuid" and size == cw.TAG_BOX_SIZE:
                fh.seek(pos + hlen)
                body = fh.read(size - hlen)
                if body[:16] == cw.TAG_UUID:
                    tag = cw.parse_tag_payload(secret, body[16:])
                    if tag is not None:
                        found.append(TagFinding(tag.session_id, tag.issued_at, tag.valid))
            pos += size
    return found
