"""Run ffmpeg children so that a failure anywhere stops all of them.

Every child's stderr goes to a log file (a full stderr pipe would deadlock a busy
ffmpeg); on failure we quote its tail in the exception. Every child runs under the
group's bounds (svcommon.ffmpeg: CPU seconds, address space, file size, in its own
process group) and ``kill_all`` may be called from any thread (a cancelled job).
"""
from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from svcommon import ffmpeg as ff

from .errors import LimitExceeded, ProcessingError

STDERR_TAIL_BYTES = 2000


def tail(path: Path, limit: int = STDERR_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class ProcessGroup:
    """The ffmpeg processes of one job; `kill_all` is safe to call at any time."""

    def __init__(self, log_dir: Path, bounds: ff.Bounds | None = None):
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.bounds = bounds or ff.Bounds(cpu_seconds=3600, wall_seconds=3600, file_bytes=16 * 1024 ** 3)
        self._procs: list[tuple[str, subprocess.Popen, Path]] = []
        self._lock = threading.Lock()
        self.cancelled: str | None = None      # why kill_all was called from outside
        self._deadline: threading.Timer | None = None
        self.over_time = False                  # the group's deadline fired
        # The creating thread's niceness (a background job's: svcommon.jobworker), kept for
        # children started from other threads too (the packaging lanes).
        self.nice = ff.current_niceness()

    def arm(self, bounds: ff.Bounds) -> None:
        """Bounds for the children started from now on; the whole group is cancelled once
        bounds.wall_seconds have passed (a child blocked on a pipe never sees its own timeout)."""
        self.bounds = bounds
        if self._deadline:
            self._deadline.cancel()
        if bounds.wall_seconds:
            self._deadline = threading.Timer(bounds.wall_seconds, self._expire)
            self._deadline.daemon = True
            self._deadline.start()

    def start(self, name: str, argv: list[str], *, stdin=None, stdout=None) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        with self._lock:
            if self.cancelled:
                raise ProcessingError(name, self.cancelled)
            with open(log, "wb") as err:
                proc = ff.spawn(argv, self.bounds, nice=self.nice, stdin=stdin, stdout=stdout, stderr=err, bufsize=0)
            self._procs.append((name, proc, log))
        return proc

    def _expire(self) -> None:
        self.over_time = True
        self.cancel(f"exceeded the {self.bounds.wall_seconds:.0f} s time limit of this job")

    def cancel(self, reason: str) -> None:
        """From another thread: kill every running child now; no new one starts."""
        with self._lock:
            self.cancelled = reason
            procs = [p for _, p, _ in self._procs]
        for proc in procs:
            if proc.poll() is None:
                ff.kill_group(proc)

    def wait_ok(self, proc: subprocess.Popen, step: str, timeout: float | None = None) -> None:
        name, _, log = next(p for p in self._procs if p[1] is proc)
        wall = min([t for t in (timeout, self.bounds.wall_seconds) if t] or [None])
        try:
            rc = proc.wait(timeout=wall)
        except subprocess.TimeoutExpired:
            ff.kill_group(proc)
            proc.wait()
            raise LimitExceeded(step, f"{name} exceeded its {wall:.0f} s time limit", tail(log)) from None
        if self.cancelled:
            raise (LimitExceeded if self.over_time else ProcessingError)(step, self.cancelled)
        if rc != 0:
            bound = ff.exceeded(rc)
            if bound:
                raise LimitExceeded(step, f"{name} exceeded its {bound} limit", tail(log))
            raise ProcessingError(step, f"{name} exited with status {rc}", tail(log))

    def kill_all(self) -> None:
        """Close our pipe ends and kill whatever still runs (no-op for exited ones)."""
        if self._deadline:
            self._deadline.cancel()
        for _, proc, _ in self._procs:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    if pipe:
                        pipe.close()
                except OSError:
                    pass
            if proc.poll() is None:
                ff.kill_group(proc)
        for _, proc, _ in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def run_checked(group: ProcessGroup, name: str, argv: list[str], step: str,
                timeout: float | None = None) -> None:
    """Run one child to completion, raising ProcessingError if it fails."""
    proc = group.start(name, argv, stdin=subprocess.DEVNULL)
    group.wait_ok(proc, step, timeout)
