"""The in-process cache of small objects (one per gunicorn worker; nothing here needs to be
shared). Caches with expiry (session lookups, media metadata, content keys) are
svcommon.caches.TTLCache (extensions.py).

``ByteLRU`` holds small objects every viewer of a video needs (init segments, stills) so a
popular video does not hit file-svc/S3 per session; it is bounded by total bytes. Media
segments never pass through here: the gateway caches their ciphertext (cdn.py).
Concurrent misses for one key are coalesced: one thread fetches, the others wait.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable


class ByteLRU:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = self.misses = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, threading.Event] = {}

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_bytes // 4:     # one huge object must not flush everything
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = value
            self.size += len(value)
            while self.size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)

    def get_or_load(self, key: Hashable, load: Callable[[], bytes]) -> bytes:
        while True:
            with self._lock:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return value
                waiter = self._inflight.get(key)
                if waiter is None:
                    self.misses += 1
                    event = self._inflight[key] = threading.Event()
                    break
            waiter.wait(30)      # another thread is loading it; then look again
        try:
            value = load()
            self.put(key, value)
            return value
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()

    def __len__(self) -> int:
        return len(self._items)

