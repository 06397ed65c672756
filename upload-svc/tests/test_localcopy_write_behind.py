"""The local copy of a large upload is written behind: past WRITE_BEHIND_START each window
goes to disk and leaves the page cache, and the copy stays byte for byte what was received,
through a rewind (a failed tus PATCH) and a resumed writer too."""
from __future__ import annotations

import os
import random

from upload_svc import localcopy

KiB = 1024


def test_write_behind_keeps_the_copy_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(localcopy, "WRITE_BEHIND_START", 256 * KiB)
    monkeypatch.setattr(localcopy, "WRITE_BEHIND_BYTES", 64 * KiB)
    rng = random.Random(14)
    data = rng.randbytes(2048 * KiB)
    path = str(tmp_path / "sv-post-copy")
    copy = localcopy.LocalCopy(path, "wb")
    for i in range(0, 1536 * KiB, 48 * KiB):
        copy.write(memoryview(data)[i:i + 48 * KiB])
    # Windows behind the start were written out and dropped; the first 256 KiB were not.
    assert copy._behind is not None and copy._written >= 1024 * KiB
    copy.rewind(1200 * KiB)                       # a failed PATCH: bytes past the run dropped
    assert copy._behind <= 1200 * KiB and copy._written <= 1200 * KiB
    for i in range(1200 * KiB, len(data), 40 * KiB):
        copy.write(data[i:i + 40 * KiB])
    assert copy.finish(len(data)) == path
    with open(path, "rb") as f:
        assert f.read() == data

    # A tus PATCH taking the copy over mid-way (r+b at the recorded offset) writes on behind it.
    resumed = localcopy.LocalCopy(path, "r+b", 1000 * KiB)
    for i in range(1000 * KiB, len(data), 48 * KiB):
        resumed.write(data[i:i + 48 * KiB])
    assert resumed.finish(len(data)) == path and resumed._written > 1000 * KiB
    with open(path, "rb") as f:
        assert f.read() == data
    os.unlink(path)
