"""Run ffmpeg children so that a failure anywhere stops all of them.

Every child's stderr goes to a log file (a full stderr pipe would deadlock a busy
ffmpeg); on failure we quote its tail in the exception.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .errors import ProcessingError

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

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, argv: list[str], *, stdin=None, stdout=None) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=err, bufsize=0)
        self._procs.append((name, proc, log))
        return proc

    def wait_ok(self, proc: subprocess.Popen, step: str, timeout: float | None = None) -> None:
        name, _, log = next(p for p in self._procs if p[1] is proc)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ProcessingError(step, f"{name} timed out", tail(log)) from None
        if rc != 0:
            raise ProcessingError(step, f"{name} exited with status {rc}", tail(log))

    def kill_all(self) -> None:
        """Close our pipe ends and kill whatever still runs (no-op for exited ones)."""
        for _, proc, _ in self._procs:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    if pipe:
                        pipe.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.kill()
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
