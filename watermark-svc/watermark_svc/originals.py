"""The per-worker copy of the originals its chunk jobs read: fetched once per worker per
video (a video's chunks and audio, claimed one after another by the same worker, share
it), kept for the videos this worker touched last (KEEP), removed by the worker that
completes the video (the others evict it after KEEP further videos), and when the worker
stops. A worker process runs one job at a time, so its directory is its own.

A killed worker cannot remove its copies, and WORK_DIR is a persistent volume: each cache
holds an flock on ``sv-originals-….lock`` next to its directory while its process lives,
and a worker starting up removes every directory whose lock nobody holds (sweep_stale)."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from pathlib import Path

from svcommon.filestore import FileStore

KEEP = 2            # videos whose original stays on disk (the current one and the one before)
PREFIX = "sv-originals-"
log = logging.getLogger("watermark.originals")


def _lock_path(root: Path) -> Path:
    return root.with_name(root.name + ".lock")


class OriginalCache:
    def __init__(self, work_dir: str | os.PathLike):
        self.work_dir = Path(work_dir)
        self.root = self.work_dir / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.fetches = 0                  # downloads made (tests: once per video)
        self._lock: int | None = None     # the open, flocked lock file while the root is ours

    def open(self) -> Path:
        """Hold the lock, then create the directory (the lock first: a directory without
        one is stale to sweep_stale)."""
        while self._lock is None:
            path = _lock_path(self.root)
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False              # a sweeper took it between our open and our lock
            if same:
                self._lock = fd
            else:
                os.close(fd)
                self.root = self.work_dir / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def get(self, fs: FileStore, video_id: str, key: str) -> Path:
        path = self.open() / video_id / "original"
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
        if self._lock is not None:
            _lock_path(self.root).unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None

    def _evict(self, keep: int) -> None:
        if not self.root.is_dir():
            return
        dirs = sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for d in dirs[keep:]:
            shutil.rmtree(d, ignore_errors=True)


def sweep_stale(work_dir: str | os.PathLike) -> list[str]:
    """Remove the copies of workers that died (their lock is free, or they had none); the
    names removed."""
    work_dir, removed = Path(work_dir), []
    if not work_dir.is_dir():
        return removed
    for root in sorted(p for p in work_dir.glob(PREFIX + "*") if p.is_dir()):
        lock = _lock_path(root)
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            fd = None                     # made before locks existed, or its sweep is under way
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue              # a live worker's
            shutil.rmtree(root, ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(root.name)
        finally:
            if fd is not None:
                os.close(fd)
    if removed:
        log.info("removed the originals of stopped workers", extra={"dirs": removed})
    return removed


def cache_of(app) -> OriginalCache:
    """One cache per app (the worker's; tests run several apps as several workers)."""
    cache = app.extensions.get("sv_originals")
    if cache is None:
        cache = app.extensions["sv_originals"] = OriginalCache(app.config["WORK_DIR"])
    return cache
