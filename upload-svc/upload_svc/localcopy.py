"""A private local copy of an upload, written while its bytes stream to S3, so the check of
the finished upload (the probe) reads it instead of downloading the whole original back
from S3 through file-svc: that second full transfer cost about a fifth of an upload's time.

The copy only saves work: whenever it is missing or incomplete (a tus PATCH served by
another replica, a full disk, a restart), the probe downloads the original as before.
Copies live in the probe's scratch directory (PROBE_SCRATCH_DIR, else TMPDIR):

- ``sv-post-<random>``: a streaming POST, removed when the request ends;
- ``sv-tus-<upload id>``: the bytes [0, upload offset) of a tus upload. A PATCH takes it
  over by renaming it to ``sv-tus-<upload id>.<lease token>`` (atomic, so a writer that
  lost its lease can never write into its successor's copy), appends what it receives,
  and renames it back once the new offset is recorded. A PATCH that fails (a part not
  stored, a checksum mismatch, the client gone) rewinds it to the offset the upload row
  still records and hands it back too: only a writer that lost its lease drops it;
- a copy under another token is removed by the next PATCH (its writer lost the lease:
  a killed process), and anything not written for IDLE_SECONDS (a killed POST, a paused
  tus upload) by ``sweep``.
"""
from __future__ import annotations

import ctypes
import glob
import logging
import os
import tempfile
import time
import uuid

log = logging.getLogger("upload_svc.localcopy")
PREFIX = "sv-"
# Longer than any live writer stays silent (the gateway drops a client idle 30 s) and than
# a finished upload's probe reads its copy (a slot wait plus a few steps of at most
# PROBE_TIMEOUT_SECONDS); short enough that a paused upload's copy does not hold scratch
# space for long.
IDLE_SECONDS = 1800
# Write-behind for large copies (_write_behind): windows of this size, from this offset on.
WRITE_BEHIND_BYTES = 64 * 1024 * 1024
WRITE_BEHIND_START = 1024 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2                      # linux/fs.h: SYNC_FILE_RANGE_WRITE
_WAIT_WRITE_WAIT = 1 | 2 | 4                    # WAIT_BEFORE | WRITE | WAIT_AFTER
_libc = ctypes.CDLL(None, use_errno=True)
_libc.sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)


def _sync_range(fd: int, offset: int, length: int, flags: int) -> None:
    if _libc.sync_file_range(fd, offset, length, flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def scratch_dir(cfg) -> str:
    return cfg.get("PROBE_SCRATCH_DIR") or tempfile.gettempdir()


def tus_path(cfg, upload_id: str) -> str:
    return os.path.join(scratch_dir(cfg), f"{PREFIX}tus-{upload_id}")


class LocalCopy:
    def __init__(self, path: str, mode: str, offset: int = 0):
        self.path = path
        self.f = open(path, mode)
        if mode == "r+b":
            self.f.truncate(offset)      # bytes past the recorded offset were never confirmed
            self.f.seek(offset)
        # Write-behind marks (_write_behind): bytes before _written are on disk and out of
        # the cache; [_written, _behind) was handed to the disk, not yet waited for. A tus
        # PATCH taking the copy over finds the previous PATCH's last window there. _end is
        # the copy's length, counted here (tell() would be a system call per write).
        self._end = self._behind = offset
        self._written = max(min(offset, WRITE_BEHIND_START), offset - WRITE_BEHIND_BYTES)

    @classmethod
    def for_post(cls, cfg) -> "LocalCopy | None":
        return cls._open(os.path.join(scratch_dir(cfg), f"{PREFIX}post-{uuid.uuid4().hex}"), "wb")

    @classmethod
    def for_patch(cls, cfg, upload_id: str, offset: int, token: str) -> "LocalCopy | None":
        """Take over the upload's copy at ``offset`` (None: there is no usable one)."""
        committed, mine = tus_path(cfg, upload_id), f"{tus_path(cfg, upload_id)}.{token}"
        # We hold the write lease: a copy under another token is a dead or displaced
        # writer's (a killed process), whose bytes are never handed back. Remove it now.
        for stale in glob.glob(glob.escape(committed) + ".*"):
            remove(stale)
        try:
            os.rename(committed, mine)
        except FileNotFoundError:
            return cls._open(mine, "wb") if offset == 0 else None
        except OSError:
            return None
        if os.path.getsize(mine) < offset:   # a PATCH went elsewhere: this copy has a hole
            remove(mine)
            return None
        return cls._open(mine, "r+b", offset)

    @classmethod
    def _open(cls, path: str, mode: str, offset: int = 0) -> "LocalCopy | None":
        try:
            return cls(path, mode, offset)
        except OSError as exc:
            log.warning("no local copy of the upload", extra={"path": path, "error": str(exc)})
            remove(path)
            return None

    def write(self, data) -> None:
        if self.f is None:
            return
        try:
            self._end += self.f.write(data)
            if self._behind is not None and self._end - self._behind >= WRITE_BEHIND_BYTES:
                self.f.flush()
                self._write_behind()
        except OSError as exc:   # full disk: carry on without the copy
            log.warning("local copy of the upload dropped", extra={"path": self.path, "error": str(exc)})
            self.discard()

    def _write_behind(self) -> None:
        """Past WRITE_BEHIND_START: start writing the last window to disk, wait for the one
        before it and drop it from the page cache. A copy of a large upload otherwise fills
        the cache beside S3's own writes, and the kernel's reclaim then costs the writer
        (bench/results/upload-10gib.md); the probe reads the copy once, from disk."""
        end = self._end
        if end < WRITE_BEHIND_START:
            self._behind = self._written = end
            return
        fd = self.f.fileno()
        try:
            if self._written < self._behind:
                _sync_range(fd, self._written, self._behind - self._written, _WAIT_WRITE_WAIT)
                os.posix_fadvise(fd, self._written, self._behind - self._written, os.POSIX_FADV_DONTNEED)
                self._written = self._behind
            _sync_range(fd, self._behind, end - self._behind, _SYNC_FILE_RANGE_WRITE)
            self._behind = end
        except OSError as exc:   # a file system without it: the copy stays, only cached
            log.info("no write-behind for the local copy", extra={"path": self.path, "error": str(exc)})
            self._behind = None

    def finish(self, size: int) -> str | None:
        """Close it; its path if it holds exactly ``size`` bytes, else it is removed."""
        if self.f is None:
            return None
        try:
            self.f.close()
            ok = os.path.getsize(self.path) == size
        except OSError:
            ok = False
        self.f = None
        if not ok:
            remove(self.path)
        return self.path if ok else None

    def rewind(self, offset: int) -> None:
        """Drop the bytes from ``offset`` on (received but never recorded); a copy that does
        not reach ``offset`` is dropped whole."""
        if self.f is None:
            return
        try:
            if self._end < offset:
                raise OSError("the copy is shorter than the recorded offset")
            self.f.truncate(offset)
            self.f.seek(offset)
            self._end = offset
            if self._behind is not None:
                self._behind, self._written = min(self._behind, offset), min(self._written, offset)
        except OSError as exc:
            log.warning("local copy of the upload dropped", extra={"path": self.path, "error": str(exc)})
            self.discard()

    def commit(self, cfg, upload_id: str, size: int) -> None:
        """The upload's recorded offset is ``size`` (after this PATCH, or where a failed
        PATCH left it): hand the copy of bytes [0, size) back under the upload's name."""
        self.rewind(size)
        path = self.finish(size)
        if path:
            try:
                os.rename(path, tus_path(cfg, upload_id))
            except OSError:
                remove(path)

    def discard(self) -> None:
        if self.f is not None:
            try:
                self.f.close()
            except OSError:
                pass
            self.f = None
        remove(self.path)


def remove(path: str | None) -> None:
    if not path:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


def tus_complete(cfg, upload_id: str, size: int) -> str | None:
    """The finished tus upload's copy if it holds all ``size`` bytes (else it is removed)."""
    path = tus_path(cfg, upload_id)
    try:
        if os.path.getsize(path) == size:
            return path
    except OSError:
        return None
    remove(path)
    return None


def discard_tus(cfg, upload_id: str) -> None:
    remove(tus_path(cfg, upload_id))


def sweep(cfg, now: float | None = None) -> int:
    """Remove copies nobody has written for IDLE_SECONDS (any process may sweep)."""
    folder, now, removed = scratch_dir(cfg), now or time.time(), 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(f"{PREFIX}post-") or entry.name.startswith(f"{PREFIX}tus-")):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > IDLE_SECONDS:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
    return removed
