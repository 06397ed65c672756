"""svcommon.caches.TTLCache: entries expire after the cache's ttl or their own, a ttl <= 0 keeps
nothing, and a full cache lets the least recently used entry go (a clock we move by hand)."""
from __future__ import annotations

from svcommon.caches import TTLCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl():
    clock = Clock()
    cache = TTLCache(60.0, timer=clock)
    cache.put("ladder", "complete")
    cache.put("growing", "partial", ttl=5.0)
    clock.now += 4.9
    assert (cache.get("ladder"), cache.get("growing")) == ("complete", "partial")
    clock.now += 0.2
    assert (cache.get("ladder"), cache.get("growing")) == ("complete", None)
    clock.now += 55.0
    assert cache.get("ladder", "gone") == "gone"


def test_a_ttl_of_zero_keeps_nothing():
    clock = Clock()
    off = TTLCache(0.0, timer=clock)
    off.put("session", 1)
    assert off.get("session") is None and len(off) == 0
    on = TTLCache(1.0, timer=clock)
    on.put("token", "claims")
    on.put("token", "claims", ttl=-3.0)                # already stale: the old entry goes too
    assert on.get("token") is None


def test_a_full_cache_drops_the_least_recently_used():
    cache = TTLCache(60.0, max_items=2, timer=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1                          # a used: b is now the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.drop("a")
    assert cache.get("a") is None and len(cache) == 1
