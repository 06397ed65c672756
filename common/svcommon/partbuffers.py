"""Part buffers, reused instead of allocated for every part.

A new 16 MiB bytearray is a fresh mmap (svcommon.memory puts the threshold at 4 MiB so that
freed parts go back to the OS): thousands of page faults and two zeroing passes before a
byte of the part arrives, for every part. Keeping a few freed buffers for the next part of
the same size avoids that. Only whole-MiB sizes are kept (parts; a last part's odd size
would never be asked for again), at most ``keep_bytes`` in all: idle memory is bounded by
that, the rest is freed as before.

Used by file-svc and upload-svc."""
from __future__ import annotations

import contextlib
import threading

MiB = 1024 * 1024


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
