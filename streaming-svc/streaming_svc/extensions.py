"""Extensions created unbound, attached in create_app (flaskr style)."""
from __future__ import annotations

from flask import Flask, current_app

from svcommon.db import Database
from svcommon.filestore import FileStore

from .cache import ByteLRU, TTLCache
from .keys import MasterKey

db = Database()


class Playback:
    """Per-process playback state: the file-svc client, the master key, the plaintext
    segment LRU and the short-lived session lookups."""

    def init_app(self, app: Flask) -> None:
        cfg = app.config
        app.extensions["streaming.playback"] = {
            "files": FileStore.from_config(cfg, "streaming"),
            "master": MasterKey(cfg["STREAM_MASTER_KEY"]),
            "segments": ByteLRU(int(cfg["SEGMENT_CACHE_MB"]) * 1024 * 1024),
            "sessions": TTLCache(float(cfg["SESSION_CACHE_SECONDS"])),
            "media": TTLCache(60.0, 2000),     # processed media metadata never changes once ready
        }


playback = Playback()


def state() -> dict:
    return current_app.extensions["streaming.playback"]
