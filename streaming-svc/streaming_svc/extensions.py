"""Extensions created unbound, attached in create_app (flaskr style)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

from svcommon.appext import PerApp
from svcommon.caches import TTLCache
from svcommon.db import Database
from svcommon.filestore import FileStoreExtension

from svcommon.media_crypto import ContentSealer
from svcommon.openapi import service_spec

from .cache import ByteLRU
from .session_crypto import MasterKey

db = Database()
filestore = FileStoreExtension("streaming")


@dataclass(frozen=True)
class Playback:
    """Per-app playback state: the session master key, the media master key's sealer, the
    LRU of init segments and stills, the short-lived session lookups (SESSION_CACHE_SECONDS),
    the processed-media metadata (live.media_of: a growing ladder only for a few seconds) and
    the opened content keys (content.py) per video, each session's video, the sessions whose pace
    refusal was recorded lately (pacing.over_budget), and the slots of downloads being sent
    (downloads.py)."""
    master: MasterKey
    sealer: ContentSealer
    objects: ByteLRU
    sessions: TTLCache
    media: TTLCache
    contents: TTLCache
    session_videos: TTLCache
    pace_refusals: TTLCache
    download_slots: threading.BoundedSemaphore

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Playback":
        return cls(master=MasterKey(cfg["STREAM_MASTER_KEY"]),
                   sealer=ContentSealer(cfg["MEDIA_MASTER_KEY"]),
                   objects=ByteLRU(int(cfg["INIT_CACHE_MB"]) * 1024 * 1024),
                   sessions=TTLCache(float(cfg["SESSION_CACHE_SECONDS"])),
                   media=TTLCache(60.0, 2000),     # a complete ladder's metadata never changes
                   contents=TTLCache(600.0, 500),  # nor does a video's content secret
                   session_videos=TTLCache(3600.0, 50000),     # nor a session's video (live.session_video)
                   pace_refusals=TTLCache(PACE_EVENT_SECONDS, 50000),   # pacing.over_budget's events
                   download_slots=threading.BoundedSemaphore(int(cfg["DOWNLOAD_MAX_PER_WORKER"])))


playback = PerApp("streaming.playback", Playback.from_config)
# A session refused by the key pacing is recorded as a security event at most once in this
# long per track and process: a ripping loop that ignores Retry-After is one event, not one
# per request (a flood of rows in the console and the database).
PACE_EVENT_SECONDS = 60.0


# The OpenAPI document of streaming-svc's public API (svcommon.openapi), attached in create_app,
# and the merged reference of every public service (apidocs.py), rebuilt at most once a minute.
api = service_spec("streaming-svc", "library, password unlock, playback sessions, keys, manifests, media")
reference_cache = PerApp("streaming.reference", lambda cfg: TTLCache(60.0, 4))
