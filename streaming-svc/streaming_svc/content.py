"""A video's content keys as streaming-svc uses them (svcommon.media_crypto): the sealed
content secret opened once per process and video, with the keyed file names (manifests)
and segment keys (key responses) memoised, so a key request costs no unsealing and no HKDF
for a segment any session already asked for. Everything here is derived, never stored."""
from __future__ import annotations

import threading

from flask import current_app

from svcommon import codeword
from svcommon.errors import APIError
from svcommon.media_crypto import AUDIO, AUDIO_VARIANT, VideoKeys

from . import repository as repo
from .extensions import playback
from .manifest import Media


class Content:
    def __init__(self, keys: VideoKeys):
        self.keys = keys
        self._names: dict[tuple[str, str, int], str] = {}
        self._segkeys: dict[tuple[str, str, int], bytes] = {}
        self._lock = threading.Lock()       # dict writes are atomic; this only avoids duplicate work

    def file_name(self, rendition: str, variant: str, index: int) -> str:
        k = (rendition, AUDIO_VARIANT if rendition == AUDIO else variant, index)
        name = self._names.get(k)
        if name is None:
            name = self._names[k] = self.keys.file_name(*k)
        return name

    def segment_key(self, track: str, variant: str, index: int) -> bytes:
        k = (track, AUDIO_VARIANT if track == AUDIO else variant, index)
        key = self._segkeys.get(k)
        if key is None:
            key = self._segkeys[k] = self.keys.segment_key(*k)
        return key


def session_variant(sid: str, track: str, index: int) -> str:
    """The variant a session gets for segment ``index``: its codeword bit (video) or the
    single audio variant."""
    if track == AUDIO:
        return AUDIO_VARIANT
    return codeword.variant(current_app.config["WATERMARK_SECRET"], sid, index)


def content_of(conn, media: Media) -> Content:
    """The opened content keys of a video whose media is encrypted (delivery_version 2);
    503 ``media_converting`` for a video processed before v2 and not yet converted."""
    cache = playback().contents
    content = cache.get(media.video_id)
    if content is not None:
        return content
    row = repo.content_secret(conn, media.video_id)
    if row is None or row["delivery_version"] < 2 or row["content_secret_enc"] is None:
        raise APIError(503, "media_converting", "This video is being converted to the current delivery format; "
                                               "try again shortly.", {"Retry-After": "30"})
    content = Content(playback().sealer.open(row["content_secret_enc"], media.video_id))
    cache.put(media.video_id, content)
    return content
