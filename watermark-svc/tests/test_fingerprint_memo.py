"""The worker's memo of reference fingerprints is bounded by bytes, not by entries: a long
video's fingerprint is large (576 bytes a frame, ~62 MB an hour at 30 fps), so a few of
them must not pile up to gigabytes in a worker process. No media, no stack: arrays of the
real fingerprint shape (np.zeros: the bytes are counted, not touched)."""
from __future__ import annotations

import numpy as np
import pytest

from watermark_svc.forensics import dbcatalogue as cat

FRAME_BYTES = 144 * 4


def fp(frames: int) -> np.ndarray:
    return np.zeros((frames, 144), np.float32)


@pytest.fixture(autouse=True)
def empty_memo():
    saved = dict(cat._FP_MEMO.items())
    cat._FP_MEMO.clear()
    yield
    cat._FP_MEMO.clear()
    for k, v in saved.items():
        cat._remember(k, v)


def memo_bytes() -> int:
    return sum(a.nbytes for a in cat._FP_MEMO.values())


def test_long_fingerprints_are_bounded_by_bytes_least_recently_used_first():
    hour = 30 * 3600                                  # frames of a one-hour video at 30 fps
    for i in range(6):                                # six 1-hour videos: ~373 MB in all
        cat._remember(f"v{i}", fp(hour))
        assert memo_bytes() <= cat.FP_MEMO_BYTES
        assert cat._recall(f"v{i}") is not None       # the newest is always kept
    kept = [f"v{i}" for i in range(6) if cat._recall(f"v{i}") is not None]
    assert kept == [f"v{i}" for i in range(6 - len(kept), 6)] and len(kept) == cat.FP_MEMO_BYTES // (hour * FRAME_BYTES)
    # Reading one marks it recently used: the next insertion evicts another.
    oldest = kept[0]
    assert cat._recall(oldest) is not None
    cat._remember("new", fp(hour))
    assert cat._recall(oldest) is not None and cat._recall(kept[1]) is None


def test_many_short_fingerprints_fit_and_one_larger_than_the_bound_is_not_kept():
    for i in range(100):                              # 100 one-minute videos: ~1 MB each
        cat._remember(f"s{i}", fp(1800))
    assert len(cat._FP_MEMO) == 100                   # not an entry count bound (was 64)
    huge = fp(cat.FP_MEMO_BYTES // FRAME_BYTES + 1)
    cat._remember("huge", huge)
    assert cat._recall("huge") is None and len(cat._FP_MEMO) == 100
    # The same video remembered again replaces its entry (never counted twice).
    cat._remember("s0", fp(3600))
    assert memo_bytes() == 99 * 1800 * FRAME_BYTES + 3600 * FRAME_BYTES
