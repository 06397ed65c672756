"""Part-sized buffers, reused instead of allocated for every part.

A new 8 MiB bytearray is a fresh mmap (svcommon.memory puts the threshold at 4 MiB so that
freed parts go back to the OS): 2048 page faults and two zeroing passes before a byte of
the part arrives, for every part. Keeping a few freed buffers of the usual part size for
the next part avoids that. At most ``keep`` free buffers are kept (idle memory is bounded
by ``keep`` x ``size``); buffers of any other size (a last part) are allocated and freed
as before.

This file is kept identical in file-svc and upload-svc."""
from __future__ import annotations

import contextlib
import threading


class PartBuffers:
    def __init__(self, size: int, keep: int):
        self.size, self.keep = size, keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int | None = None) -> bytearray:
        size = self.size if size is None else size
        if size == self.size:
            with self._lock:
                if self._free:
                    return self._free.pop()
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        if len(buf) != self.size:
            return
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(buf)

    @contextlib.contextmanager
    def lend(self, size: int | None = None):
        buf = self.take(size)
        try:
            yield buf
        finally:
            self.give(buf)
