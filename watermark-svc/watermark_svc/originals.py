"""The per-worker copy of the originals its chunk jobs read: fetched once per worker per
video (a video's chunks and audio, claimed one after another by the same worker, share
it), kept for the videos this worker touched last, removed when the worker stops.
A worker process runs one job at a time, so its directory is its own."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from svcommon.filestore import FileStore

KEEP = 2            # videos whose original stays on disk (the current one and the one before)


class OriginalCache:
    def __init__(self, work_dir: str | os.PathLike):
        self.root = Path(work_dir) / f"sv-originals-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.fetches = 0                  # downloads made (tests: once per video)

    def get(self, fs: FileStore, video_id: str, key: str) -> Path:
        path = self.root / video_id / "original"
        if path.is_file():
            os.utime(path.parent)         # recently used: the last to be evicted
            return path
        self._evict(keep=KEEP - 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name("original.partial")
        fs.download(key, partial)         # a killed download leaves only .partial, re-fetched next time
        partial.rename(path)
        self.fetches += 1
        return path

    def drop(self, video_id: str) -> None:
        shutil.rmtree(self.root / video_id, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _evict(self, keep: int) -> None:
        if not self.root.is_dir():
            return
        dirs = sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for d in dirs[keep:]:
            shutil.rmtree(d, ignore_errors=True)


def cache_of(app) -> OriginalCache:
    """One cache per app (the worker's; tests run several apps as several workers)."""
    cache = app.extensions.get("sv_originals")
    if cache is None:
        cache = app.extensions["sv_originals"] = OriginalCache(app.config["WORK_DIR"])
    return cache
