"""An upload's bytes cut into S3 parts and stored with file-svc's multipart API (each part PUT
straight to S3 at a URL file-svc signs, svcommon.filestore), a
bounded number in flight while the next part is read: the streaming POST's path (tus
records its parts in the uploads row as they land, see tuswrite; both share the sizes,
the reading and the buffers here).

Memory per upload request: the parts in flight plus the one being filled
(``TUS_PARTS_IN_FLIGHT + 1`` parts of ``TUS_PART_SIZE``), in buffers reused across parts
and requests (svcommon.partbuffers, at most that many kept per process when idle)."""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from svcommon.filestore import FileStore, FileStoreError

from svcommon.partbuffers import PartBuffers

log = logging.getLogger("upload_svc.parts")
MAX_PARTS = 9000     # below S3's 10000, leaving room
# Bytes per read from the client: small enough to stay in the CPU cache between the socket,
# the local copy and the checksum, large enough to keep the calls few.
READ_STEP = 256 * 1024


def part_size(cfg, length: int | None, max_parts: int = MAX_PARTS) -> int:
    """TUS_PART_SIZE, grown (in whole MiB) so that ``length`` bytes (unknown: the largest
    upload) fit in ``max_parts`` parts."""
    base = int(cfg["TUS_PART_SIZE"])
    need = -(-(length if length is not None else int(cfg["UPLOAD_MAX_BYTES"])) // max_parts)
    return max(base, -(-need // (1024 * 1024)) * 1024 * 1024)


def fill_part(source, buf: bytearray, start: int, on_bytes: Callable) -> int:
    """Fill ``buf`` from ``start`` (``source.fill(buf, start, stop)``), showing each new
    stretch to ``on_bytes(view)`` (count, checksum, local copy) as it arrives; returns the
    new fill level (< len(buf) only at the end of the source)."""
    filled = start
    while filled < len(buf):
        got = source.fill(buf, filled, min(len(buf), filled + READ_STEP))
        if not got:
            break
        with memoryview(buf) as view:
            on_bytes(view[filled:filled + got])
        filled += got
    return filled


def store(fs: FileStore, key: str, source, size: int, in_flight: int, buffers: PartBuffers,
          on_bytes: Callable) -> int:
    """Store ``source`` to its end as the object ``key``; returns its size (0: nothing was
    stored). Any failure (the client gone, a refusal raised by ``on_bytes``, storage down)
    first lets the parts in flight finish, then aborts the multipart upload: S3 keeps nothing."""
    upload_id = fs.create_multipart(key)
    total, parts, pending = 0, [], deque()
    try:
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="postpart") as pool:
            while True:
                buf = buffers.take(size)
                filled = fill_part(source, buf, 0, on_bytes)
                total += filled
                if filled < size:            # the last part: its own exact-size copy
                    data = bytes(memoryview(buf)[:filled])
                    buffers.give(buf)
                else:
                    data = buf
                while len(pending) >= in_flight:
                    parts.append(pending.popleft().result())
                if data:
                    pending.append(pool.submit(_send, fs, key, upload_id, len(parts) + len(pending) + 1,
                                               data, buffers))
                if filled < size:
                    break
            while pending:
                parts.append(pending.popleft().result())
        if total == 0:
            fs.abort_multipart(key, upload_id)
        else:
            fs.complete_multipart(key, upload_id, parts)
    except BaseException:
        # Leaving the pool's block waited for every part in flight: none lands after this.
        _abort_quietly(fs, key, upload_id)
        raise
    return total


def _send(fs: FileStore, key: str, upload_id: str, number: int, data, buffers: PartBuffers) -> dict:
    try:
        return {"n": number, "etag": fs.upload_part(key, upload_id, number, data), "size": len(data)}
    finally:
        if isinstance(data, bytearray):    # a full part's buffer: reused for a later part
            buffers.give(data)


def _abort_quietly(fs: FileStore, key: str, upload_id: str) -> None:
    try:
        fs.abort_multipart(key, upload_id)
    except FileStoreError as exc:   # the video's prefix is deleted on discard, which aborts it too
        log.warning("could not abort a multipart upload", extra={"key": key, "error": str(exc)})

