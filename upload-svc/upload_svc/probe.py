"""Is it a video we accept? The upload's private local copy (localcopy), else the stored
original copied from file-svc into a private temp file (ffmpeg never gets a URL or our
service token), and judged by the one shared
probe (svcommon.mediaprobe), the same rules the worker applies. A bounded number of
probes run at once per process; beyond that the upload is asked to retry."""
from __future__ import annotations

import logging
import os
import tempfile
import threading

from svcommon.filestore import FileStore
from svcommon.mediaprobe import MediaLimits, MediaRejected, probe_to_publish

log = logging.getLogger("upload_svc.probe")
_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


class NotAVideo(Exception):
    """``str(exc)`` is the reason shown to the uploader; ``limit`` the setting, if any."""

    def __init__(self, reason: str, limit: str | None = None):
        super().__init__(reason)
        self.limit = limit


class Busy(Exception):
    """Every probe slot is taken: the caller answers 503 + Retry-After."""


def _slot(size: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        return _slots.setdefault(size, threading.BoundedSemaphore(size))


def probe(fs: FileStore, key: str, limits: MediaLimits, concurrency: int, wait_s: float,
          scratch: str | None = None, local: str | None = None) -> dict:
    """``local``: a complete local copy written during the upload (localcopy), read
    instead of downloading the original; the caller removes it."""
    slot = _slot(max(1, concurrency))
    if not slot.acquire(timeout=max(0.0, wait_s)):
        raise Busy()
    try:
        if local:
            return _judge(key, local, limits)
        with tempfile.TemporaryDirectory(prefix="sv-probe-", dir=scratch or None) as tmp:
            path = os.path.join(tmp, "original")
            fs.download(key, path)
            return _judge(key, path, limits)
    finally:
        slot.release()


def _judge(key: str, path: str, limits: MediaLimits) -> dict:
    try:
        return probe_to_publish(path, limits).summary()
    except MediaRejected as exc:
        log.info("probe refused file", extra={"key": key, "reason": exc.reason, "limit": exc.limit})
        raise NotAVideo(exc.reason, exc.limit) from None
