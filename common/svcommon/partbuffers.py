"""Part buffers, reused instead of allocated for every part.

A new 16 MiB bytearray is a fresh mmap (svcommon.memory puts the threshold at 4 MiB so that
freed parts go back to the OS): thousands of page faults and two zeroing passes before a
byte of the part arrives, for every part. Keeping a few freed buffers for the next part of
the same size avoids that. Only whole-MiB sizes are kept (parts; a last part's odd size
would never be asked for again), at most ``keep_bytes`` in all: idle memory is bounded by
that, the rest is freed as before.

``PartStream`` sends a part while its buffer is still being filled (upload-svc's tus
PATCHes); ``MIN_PART_BYTES`` is S3's smallest part, which part sizes are checked against.

Used by file-svc and upload-svc."""
from __future__ import annotations

import contextlib
import threading

MiB = 1024 * 1024
MIN_PART_BYTES = 5 * MiB     # S3's smallest part (but the last): part sizes are checked against it


class PartBuffers:
    def __init__(self, keep_bytes: int):
        self.keep_bytes = keep_bytes
        self._free: dict[int, list[bytearray]] = {}
        self._kept = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self._lock:
            free = self._free.get(size)
            if free:
                self._kept -= size
                return free.pop()
        return bytearray(size)

    def give(self, buf) -> None:
        size = len(buf)
        if not isinstance(buf, bytearray) or size % MiB or not size:
            return
        with self._lock:
            if self._kept + size <= self.keep_bytes:
                self._free.setdefault(size, []).append(buf)
                self._kept += size

    @contextlib.contextmanager
    def lend(self, size: int):
        buf = self.take(size)
        try:
            yield buf
        finally:
            self.give(buf)


class PartAbandoned(Exception):
    """The part's bytes stopped coming for good (the client went away, the request failed)."""


class PartStalled(Exception):
    """No new bytes for STALL_SECONDS: the PUT streaming them gives up (S3 services time out a
    request body that stops flowing, and a slow uploader should not hold one open); the part
    is sent once it is full instead."""


class PartStream:
    """A part sent while its buffer is still being filled: the PUT's body (``__len__`` and
    ``__iter__``, which requests streams with that Content-Length) yields each stretch of
    ``buf`` as the filler reports it with ``grew``, up to ``size`` bytes. Streaming instead
    of sending full parts means a request's last part is in S3 moments after its last byte
    arrived, instead of a part's transfer later (what a tus client waits for at the end of
    each PATCH). Each iteration starts from the first byte, so a retried PUT sends it all
    again. The filler ends with ``grew(size)`` or ``abandon()``; ``wait_filled`` tells the
    sender when the buffer is no longer written (then it may be reused)."""

    STALL_SECONDS = 5.0
    # Bytes per send: the sender wakes once per SEND_STEP filled (fewer wake-ups and
    # syscalls than one per read from the client), or sooner at the part's end.
    SEND_STEP = 2 * MiB

    def __init__(self, buf: bytearray, size: int, filled: int = 0):
        self.buf = buf
        self.size = size
        self.filled = filled
        self.abandoned = False
        self._want = 0          # the fill level the sender waits for (0: it is not waiting)
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self.size

    def grew(self, filled: int) -> None:
        with self._cond:
            self.filled = filled
            if self._want and filled >= self._want:
                self._cond.notify_all()

    def abandon(self) -> None:
        with self._cond:
            self.abandoned = True
            self._cond.notify_all()

    @property
    def done(self) -> bool:
        return self.abandoned or self.filled >= self.size

    def wait_filled(self) -> bool:
        """Block until the filler is done with the buffer; True if the part is whole."""
        with self._cond:
            self._want = self.size
            self._cond.wait_for(lambda: self.done)
            return not self.abandoned

    def __iter__(self):
        sent = 0
        while sent < self.size:
            with self._cond:
                self._want = min(self.size, sent + self.SEND_STEP)
                self._cond.wait_for(lambda: self.abandoned or self.filled >= self._want, self.STALL_SECONDS)
                self._want = 0
                if self.abandoned:
                    raise PartAbandoned()
                if self.filled <= sent:         # not one new byte for STALL_SECONDS
                    raise PartStalled()
                upto = min(self.filled, self.size)
            yield memoryview(self.buf)[sent:upto]
            sent = upto
