"""The exact layer: StreamVault's MAC'd session tag in the container metadata.

streaming-svc puts a top-level ISO-BMFF `uuid` box in every init segment it serves
(format in svcommon.codeword). An unmodified copy still has it. We walk the file's
top-level boxes with seeks (a multi-GB suspect is never read whole), hand our uuid
boxes to svcommon.codeword for parsing and MAC verification, and keep the verified
ones. A box with a bad MAC is reported (someone edited it) but never trusted.
"""
from __future__ import annotations

from dataclasses import dataclass

from svcommon import codeword as cw
from svcommon.mp4boxes import walk_file

MAX_BOXES = 100_000          # a fragmented MP4 has 2 boxes per segment; bound the walk


@dataclass(frozen=True)
class TagFinding:
    session_id: str
    issued_at: int
    valid: bool


def find_tags(path: str, secret: bytes) -> list[TagFinding]:
    found: list[TagFinding] = []
    with open(path, "rb") as fh:
        for box in walk_file(fh, MAX_BOXES):
            if not box.kind.isascii():
                break                               # not (or no longer) an ISO-BMFF file
            if box.kind == b"uuid" and box.end - box.start == cw.TAG_BOX_SIZE:
                fh.seek(box.body)
                body = fh.read(box.end - box.body)
                if body[:16] == cw.TAG_UUID:
                    tag = cw.parse_tag_payload(secret, body[16:])
                    if tag is not None:
                        found.append(TagFinding(tag.session_id, tag.issued_at, tag.valid))
    return found
