"""Writing a tus PATCH body into S3 (parts PUT straight to S3 at URLs file-svc signs), with
bounded memory (and into the upload's local copy for the probe, see localcopy).

Bytes are cut into parts of ``part_size`` (S3 needs >= 5 MiB except the last part). A part
the PATCH's declared length will fill is PUT while its bytes arrive (PartStream; the
PATCH's last whole part as two halves side by side), so the PATCH's answer waits only for
what S3 has not yet taken, not for a whole part's transfer after the last byte; without a
length, full parts are sent once full. Up to ``TUS_PARTS_IN_FLIGHT`` parts are being
stored at once (memory: that many plus one). Parts finish in
any order; the uploads row records the longest run of stored parts from the start, so the
offset it promises is always contiguous, and a dropped connection or a killed process
loses at most the parts still in flight (a part being streamed when the body stops is
cut off, S3 stores nothing of it, and its bytes become the tail). A part stored beyond that run but not recorded
is harmless: the resumed upload sends the same part number again (S3 keeps the last) and
completion lists only recorded parts (S3 drops the rest). Bytes that do not fill a
part when the request ends are kept as a small "tail" object and prepended to the next
PATCH. With an Upload-Checksum nothing is recorded until the whole body is verified.
Whatever the outcome, the local copy is handed back at the offset the row records."""
from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import current_app

from svcommon.errors import APIError
from svcommon.filestore import FileStoreError, NotFound
from svcommon.partbuffers import MIN_PART_BYTES, PartAbandoned, PartStalled, PartStream

from . import localcopy, object_keys, parts
from . import repository as repo
from .extensions import db, filestore, part_buffers

log = logging.getLogger("upload_svc.tus")
CHECKSUMS = {"sha1": hashlib.sha1, "md5": hashlib.md5, "sha256": hashlib.sha256}


class LeaseLost(Exception):
    pass


def parse_checksum(header: str | None):
    if not header:
        return None
    algo, _, digest = header.strip().partition(" ")
    if algo not in CHECKSUMS:
        raise APIError(400, "unsupported_checksum", f"checksum algorithm must be one of {', '.join(CHECKSUMS)}")
    try:
        expected = base64.b64decode(digest, validate=True)
    except ValueError:
        raise APIError(400, "invalid_checksum", "Upload-Checksum digest is not base64")
    return CHECKSUMS[algo](), expected


class PatchWriter:
    def __init__(self, up: dict, token: str, checksum):
        cfg = current_app.config
        self.up = up
        self.token = token
        self.fs = filestore()
        self.lease = int(cfg["TUS_LEASE_SECONDS"])
        self.expiry = int(cfg["UPLOAD_EXPIRY_HOURS"])
        self.part_size = int(up["part_size"])
        self.parts: list[dict] = list(up["parts"])
        self.checksum = checksum
        self.conn = db.conn()
        self.old_tail = up["tail_key"]
        self.durable = sum(p["size"] for p in self.parts)   # bytes recorded as parts
        self.recorded = int(up["upload_offset"])            # the offset the row promises
        self.in_flight = max(1, int(cfg["TUS_PARTS_IN_FLIGHT"]))
        self.pending: deque[Future] = deque()
        self.stored: dict[int, dict] = {}   # finished out of order, waiting for the parts before them
        self.lock = threading.Lock()        # guards parts / stored / durable between pool threads
        self.last_renew = time.monotonic()
        self.buffers = part_buffers()

    # ---- part pipeline -------------------------------------------------------------------
    def _send(self, number: int, data: bytes) -> dict:
        return {"n": number, "etag": self.fs.upload_part(self.up["object_key"], self.up["s3_upload_id"], number, data),
                "size": len(data)}

    def _send_and_record(self, app, number: int, data: bytearray | PartStream) -> None:
        """Pool thread: store the part, then extend the contiguous run of stored parts and
        record it at once (own connection), so a part in S3 is durable even if the client
        stalls and the process dies before the next read returns. Recording happens under
        the lock, so rows are written in order and never go backwards. A PartStream is sent
        while it fills; if its bytes stall, once it is full; if they stop, not at all."""
        stream = data if isinstance(data, PartStream) else None
        try:
            try:
                part = self._send(number, data)
            except PartStalled:
                if not stream.wait_filled():
                    return
                part = self._send(number, memoryview(stream.buf)[:stream.size])
        except PartAbandoned:
            return              # the PATCH ended before this part was whole: its bytes become the tail
        finally:
            if stream:
                stream.wait_filled()           # the filler is done writing into the buffer
            self.buffers.give(stream.buf if stream else data)
        with self.lock:
            self.stored[number] = part
            grew = False
            while len(self.parts) + 1 in self.stored:
                done = self.stored.pop(len(self.parts) + 1)
                self.parts.append(done)
                self.durable += done["size"]
                grew = True
            if grew and self.checksum is None:
                # The old tail's bytes are now inside a part: the row no longer needs it.
                with app.app_context(), db.standalone() as conn:
                    self._record(self.durable, None, 0, conn=conn, parts=list(self.parts))

    def _settle(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` parts are in flight. A failed part fails the PATCH,
        after the others have finished (so none writes to the row afterwards): the row keeps
        the contiguous run stored before it, and the client resumes from there."""
        while len(self.pending) > keep:
            oldest = self.pending.popleft()
            try:
                oldest.result()
            except BaseException:
                wait(self.pending)
                self.pending.clear()
                raise

    def _record(self, offset: int, tail_key: str | None, tail_size: int, status: str = "receiving",
                conn=None, parts: list[dict] | None = None) -> None:
        conn = conn or self.conn
        ok = repo.save_progress(conn, self.up["id"], self.token, offset, self.parts if parts is None else parts,
                                tail_key, tail_size, self.lease, self.expiry, status)
        conn.commit()
        self.last_renew = time.monotonic()
        if not ok:
            raise LeaseLost()
        self.recorded = offset

    def _renew(self) -> None:
        if time.monotonic() - self.last_renew > self.lease / 4:
            ok = repo.renew_lease(self.conn, self.up["id"], self.token, self.lease)
            self.conn.commit()
            self.last_renew = time.monotonic()
            if not ok:
                raise LeaseLost()

    def _next_target(self, filled: int, whole: int, second_half: bool) -> int:
        """The size of the next part, which the PATCH's declared length says will be whole
        (0: it will not) and is sent as it fills (PartStream), so the PATCH's end does not
        wait for a whole part's transfer. ``whole``: the bytes from this part's start to the
        PATCH's end. The PATCH's last whole part goes as two halves, sent side by side: S3
        takes one stream slower than the bytes come, and what it has not taken when the last
        byte arrives is what the client waits for."""
        half = self.part_size // 2
        if second_half:
            return half
        if whole >= 2 * self.part_size or (whole >= self.part_size and (half < MIN_PART_BYTES or filled >= half)):
            return self.part_size
        return half if whole >= self.part_size else 0

    # ---- the PATCH -----------------------------------------------------------------------
    def write(self, body, length: int | None) -> tuple[int, bool]:
        """Returns (new offset, upload complete?). The bytes also extend the upload's local
        copy (localcopy), handed back only once the new offset is recorded."""
        cfg = current_app.config
        copy = localcopy.LocalCopy.for_patch(cfg, self.up["id"], self.up["upload_offset"], self.token)
        try:
            new_offset, complete = self._write(body, length, copy)
        except LeaseLost:
            if copy:
                copy.discard()     # the upload is someone else's now: never hand it back
            raise
        except BaseException:
            if copy:               # bytes [0, recorded offset) are still good: keep them
                copy.commit(cfg, self.up["id"], self.recorded)
            raise
        if copy:
            copy.commit(cfg, self.up["id"], new_offset)
        return new_offset, complete

    def _write(self, body, length: int | None, copy: localcopy.LocalCopy | None) -> tuple[int, bool]:
        # The part being filled, straight from the client (rawbody); full ones (and parts
        # streamed while they fill) belong to the pool threads, which give their buffer
        # back once it is stored.
        self.part = self.buffers.take(self.part_size)
        try:
            return self._fill(body, length, copy)
        finally:
            if self.part is not None:
                self.buffers.give(self.part)

    def _fill(self, body, length: int | None, copy: localcopy.LocalCopy | None) -> tuple[int, bool]:
        part = self.part
        offset0 = self.up["upload_offset"]
        total = self.up["upload_length"]
        filled = 0
        if self.up["tail_size"]:
            tail = self.fs.get_bytes(self.old_tail)
            if len(tail) != self.up["tail_size"]:
                raise APIError(500, "tail_mismatch", "stored partial data is inconsistent; restart the upload")
            part[:len(tail)] = tail
            filled = len(tail)
        received, disconnected = 0, False
        hasher = self.checksum[0] if self.checksum else None
        app = current_app._get_current_object()
        number = len(self.parts) + 1
        stream: PartStream | None = None    # the part being filled, when it is sent as it fills
        target = self.part_size             # the size of the part being filled
        second_half = False                 # filling the second half of the PATCH's last whole part
        # Parts sent as they fill need the PATCH's length; once the rest of the body cannot
        # fill a part, no later one can either.
        streaming = length is not None
        buf = b""
        with ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="tuspart") as pool:
            try:
                while length is None or received < length:
                    if stream is None and streaming:
                        target = self._next_target(filled, filled + length - received, second_half)
                        second_half = 0 < target < self.part_size and not second_half
                        if target:
                            self._settle(self.in_flight - 1)
                            stream = PartStream(part, target, filled)
                            self.pending.append(pool.submit(self._send_and_record, app, number, stream))
                        else:                   # the PATCH ends inside this part: it becomes the tail
                            target, streaming = self.part_size, False
                    stop = min(target, filled + parts.READ_STEP)
                    if length is not None:
                        stop = min(stop, filled + length - received)
                    try:
                        got = body.fill(part, filled, stop)
                    except Exception as exc:  # client went away mid-body (ClientDisconnected, socket errors)
                        log.info("client disconnected mid-PATCH", extra={"upload_id": self.up["id"], "error": str(exc)})
                        disconnected = True
                        break
                    if not got:
                        disconnected = length is not None
                        break
                    received += got
                    if offset0 + received > total:
                        raise APIError(400, "exceeds_length", "more bytes than the declared Upload-Length")
                    with memoryview(part) as view:          # the new bytes, while they are in the CPU cache
                        if hasher:
                            hasher.update(view[filled:filled + got])
                        if copy:
                            copy.write(view[filled:filled + got])
                    filled += got
                    if stream is not None:
                        stream.grew(filled)
                    if filled == target:
                        if stream is None:
                            self._settle(self.in_flight - 1)
                            self.pending.append(pool.submit(self._send_and_record, app, number, part))
                        stream = None
                        target = self.part_size
                        number += 1
                        self.part = part = self.buffers.take(self.part_size)
                        filled = 0
                    self._renew()
            finally:
                buf = bytes(memoryview(part)[:filled])
                if stream is not None:          # the body ended short of it: it becomes the tail
                    self.part = None            # the buffer is its sender's, to give back
                    stream.abandon()
            self._settle()
        if disconnected and hasher:
            return offset0, False  # a partial body cannot be verified: keep nothing
        if hasher and hasher.digest() != self.checksum[1]:
            raise APIError(460, "checksum_mismatch", "Upload-Checksum does not match the data; resend this chunk")
        new_offset = offset0 + received
        if new_offset == total:
            if buf:
                self.parts.append(self._send(len(self.parts) + 1, bytes(buf)))
            self._record(total, None, 0, status="completing")
            self._drop_tail(self.old_tail)
            return total, True
        new_tail = None
        if buf:
            new_tail = object_keys.tail_key(self.up["video_id"])
            self.fs.put_stream(new_tail, bytes(buf), len(buf))
        try:
            self._record(new_offset, new_tail, len(buf))
        except BaseException:
            self._drop_tail(new_tail)
            raise
        self._drop_tail(self.old_tail)
        return new_offset, False

    def _drop_tail(self, key: str | None) -> None:
        if not key:
            return
        try:
            self.fs.delete(key)
        except (NotFound, FileStoreError) as exc:  # the video prefix is swept on delete anyway
            log.warning("could not delete tail object", extra={"key": key, "error": str(exc)})
