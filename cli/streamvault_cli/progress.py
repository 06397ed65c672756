"""Progress on stderr (stdout stays for results and --json): a redrawn bar on a terminal,
plain lines at every 10 % otherwise (logs, CI), nothing with --quiet."""
from __future__ import annotations

import sys
import time


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    WIDTH = 28
    REDRAW_SECONDS = 0.1

    def __init__(self, label: str, total: int, enabled: bool = True, stream=None):
        self.label, self.total = label, max(total, 1)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.done_bytes = self.first = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._decile = -1

    def start(self, offset: int) -> None:
        self.done_bytes = self.first = offset
        self.started = time.monotonic()
        if self.enabled and not self.tty:
            resumed = f", resuming at {human_size(offset)}" if offset else ""
            self._line(f"{self.label}: {human_size(self.total)}{resumed}")
        self._decile = int(10 * offset / self.total)
        self._draw(force=True)

    def advance(self, n: int) -> None:
        self.done_bytes = min(self.total, self.done_bytes + n)
        self._draw()

    def set(self, offset: int) -> None:
        self.done_bytes = offset
        self._draw()

    def finish(self, note: str = "done") -> None:
        if not self.enabled:
            return
        self._draw(force=True)
        if self.tty:
            self.stream.write("\n")
        else:
            self._line(f"{self.label}: {note}")
        self.stream.flush()

    def _rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.done_bytes - self.first) / elapsed if elapsed > 0 else 0.0

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        fraction = self.done_bytes / self.total
        if not self.tty:
            decile = int(10 * fraction)
            if decile > self._decile:
                self._decile = decile
                self._line(f"{self.label}: {100 * fraction:.0f} % ({human_size(self.done_bytes)})")
            return
        now = time.monotonic()
        if not force and now - self._drawn < self.REDRAW_SECONDS:
            return
        self._drawn = now
        filled = int(self.WIDTH * fraction)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label[:30]:30} [{bar}] {100 * fraction:5.1f} % "
                          f"{human_size(self.done_bytes)}/{human_size(self.total)} {human_size(self._rate())}/s  ")
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
