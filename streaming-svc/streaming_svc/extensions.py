"""Extensions created unbound, attached in create_app (flaskr style)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from svcommon.appext import PerApp
from svcommon.db import Database
from svcommon.filestore import FileStoreExtension

from .cache import ByteLRU, TTLCache
from .session_crypto import MasterKey

db = Database()
filestore = FileStoreExtension("streaming")


@dataclass(frozen=True)
class Playback:
    """Per-app playback state: the master key, the plaintext segment LRU, the short-lived
    session lookups and the processed-media metadata."""
    master: MasterKey
    segments: ByteLRU
    sessions: TTLCache
    media: TTLCache

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Playback":
        return cls(master=MasterKey(cfg["STREAM_MASTER_KEY"]),
                   segments=ByteLRU(int(cfg["SEGMENT_CACHE_MB"]) * 1024 * 1024),
                   sessions=TTLCache(float(cfg["SESSION_CACHE_SECONDS"])),
                   media=TTLCache(60.0, 2000))     # processed media metadata never changes once ready


playback = PerApp("streaming.playback", Playback.from_config)
