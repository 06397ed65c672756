"""The one ISO-BMFF (MP4) box walker: the boxes between two offsets, from bytes in memory
or from a file read piecewise (a stored copy may be large). 32-bit sizes, 64-bit sizes
(size 1) and "to the end" (size 0); a box that is too small or runs past the end stops
the walk, so hostile input never loops or reads outside the range."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator


@dataclass(frozen=True)
class Box:
    kind: bytes       # the four-character type
    start: int        # offset of the header
    body: int         # offset of the body (after the 8- or 16-byte header)
    end: int          # offset just past the box


def walk(read: Callable[[int, int], bytes], start: int, end: int, max_boxes: int | None = None) -> Iterator[Box]:
    """The boxes from ``start`` to ``end``; ``read(offset, n)`` returns up to n bytes."""
    pos, count = start, 0
    while pos + 8 <= end and (max_boxes is None or count < max_boxes):
        head = read(pos, 16)
        size, kind = struct.unpack_from(">I4s", head, 0)
        header = 8
        if size == 1 and len(head) >= 16 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield Box(kind, pos, pos + header, pos + size)
        pos, count = pos + size, count + 1


def walk_bytes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    return walk(lambda pos, n: data[pos:pos + n], start, len(data) if end is None else end)


def walk_file(fh: BinaryIO, max_boxes: int | None = None) -> Iterator[Box]:
    """Top-level boxes of an open file; read the bodies with ``fh.seek(box.body)``."""
    fh.seek(0, 2)
    size = fh.tell()

    def read(pos: int, n: int) -> bytes:
        fh.seek(pos)
        return fh.read(n)
    return walk(read, 0, size, max_boxes)
