"""Small in-process caches (one per gunicorn worker; nothing here needs to be shared).

``ByteLRU`` holds small objects every viewer of a video needs (init segments, stills) so a
popular video does not hit file-svc/S3 per session; it is bounded by total bytes. Media
segments never pass through here: the gateway caches their ciphertext (cdn.py).
Concurrent misses for one key are coalesced: one thread fetches, the others wait.
``TTLCache`` keeps a session lookup for a second so a player's burst of key and manifest
requests costs one database round trip, while expiry/revocation still take effect within
that time; it also holds per-video metadata and opened content keys.
"""
from __future__ import annotations

import threading
import time
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


class TTLCache:
    def __init__(self, ttl: float, max_items: int = 20000):
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[Hashable, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        if self.ttl <= 0:
            return None
        entry = self._items.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Hashable, value) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._items) >= self.max_items:
                now = time.monotonic()
                for k in [k for k, (exp, _) in self._items.items() if exp < now] or list(self._items)[:1000]:
                    self._items.pop(k, None)
            self._items[key] = (time.monotonic() + self.ttl, value)

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)
