"""The one in-process cache with expiry (per gunicorn process; nothing here is shared): a
bounded map whose entries expire ``ttl`` seconds after they were put, or after their own
ttl, the least recently used going first when it is full. cachetools' TLRUCache behind one
lock (cachetools' caches are not thread-safe, and the services run threads). A ttl <= 0
keeps nothing (a cache switched off by configuration, an entry already stale)."""
from __future__ import annotations

import threading
import time
from typing import Callable, Hashable

import cachetools


def _expires(_key, entry: tuple[float, object], now: float) -> float:
    return now + entry[0]


class TTLCache:
    def __init__(self, ttl: float, max_items: int = 20000, timer: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._items = cachetools.TLRUCache(max_items, _expires, timer)
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        with self._lock:
            entry = self._items.get(key)
        return default if entry is None else entry[1]

    def put(self, key: Hashable, value, ttl: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds (the cache's own by default)."""
        ttl = self.ttl if ttl is None else ttl
        with self._lock:
            if ttl > 0:
                self._items[key] = (ttl, value)
            else:
                self._items.pop(key, None)

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
