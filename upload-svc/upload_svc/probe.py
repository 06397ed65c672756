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

from svcommon import ffmpeg as ff
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


class SniffedSource:
    """An upload's bytes (a tus PATCH body from offset 0, a POST's file part), the first
    ``svcommon.ffmpeg.SNIFF_BYTES`` of them read ahead and checked to be a container we accept
    (the probe's first rule) before any of it is stored: a file that is not one is refused
    at once (NotAVideo), where a 10 GB archive picked by mistake used to go up whole before
    the probe at the end refused it. ``fill(buf, start, stop)`` then gives those bytes first,
    then the rest, as the source would have. A shorter head is judged only when it is the
    whole file (``file_size``; None: the source's end is the file's): a tus client's first
    chunk may be smaller, and the probe at the end judges that file. A read that fails here
    (the client gone) fails again at the caller's next ``fill``, where it is handled."""

    def __init__(self, source, file_size: int | None):
        self.source = source
        head, got, self._error = bytearray(ff.SNIFF_BYTES), 0, None
        try:
            while got < len(head):
                n = source.fill(head, got, len(head))
                if not n:
                    break
                got += n
        except Exception as exc:          # re-raised by fill, after the bytes that came
            self._error = exc
        self._head, self._given = bytes(head[:got]), 0
        whole = self._error is None and got > 0 and (file_size is None or got == file_size)
        if got == len(head) or whole:
            try:
                ff.sniff(self._head)
            except ff.UnsupportedContainer as exc:
                raise NotAVideo(str(exc)) from None

    def fill(self, buf, start: int, stop: int) -> int:
        if self._given < len(self._head):
            n = min(stop - start, len(self._head) - self._given)
            buf[start:start + n] = self._head[self._given:self._given + n]
            self._given += n
            return n
        if self._error is not None:
            raise self._error
        return self.source.fill(buf, start, stop)


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
