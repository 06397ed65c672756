"""Extensions created unbound, attached in create_app."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from svcommon.appext import PerApp
from svcommon.db import Database
from svcommon.filestore import FileStoreExtension
from svcommon.openapi import service_spec

from svcommon.partbuffers import PartBuffers

db = Database()
filestore = FileStoreExtension("upload")


@dataclass
class SweepClock:
    """Says when the expired-upload sweep is due: at most once per ``every_s`` per app."""
    every_s: float = 60.0
    next_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if now < self.next_at:
                return False
            self.next_at = now + self.every_s
            return True


sweep_clock = PerApp("upload.sweep_clock", lambda cfg: SweepClock())
# Open progress streams per worker process (see streams.py).
sse_slots = PerApp("upload.sse_slots", lambda cfg: threading.BoundedSemaphore(int(cfg["SSE_MAX_STREAMS_PER_WORKER"])))
# Original downloads being sent per worker process (videos.py).
download_slots = PerApp("upload.download_slots",
                        lambda cfg: threading.BoundedSemaphore(int(cfg["DOWNLOAD_MAX_PER_WORKER"])))
# Reused part buffers of uploads (parts.py): as many kept idle as one upload request fills.
part_buffers = PerApp("upload.part_buffers", lambda cfg: PartBuffers(
    (int(cfg["TUS_PARTS_IN_FLIGHT"]) + 1) * int(cfg["TUS_PART_SIZE"])))

# The OpenAPI document of upload-svc's public API (svcommon.openapi), attached in create_app.
api = service_spec("upload-svc", "uploads (tus and multipart), own videos, captions, progress events, analytics")
