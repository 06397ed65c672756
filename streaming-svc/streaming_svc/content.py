"""A video's content keys as streaming-svc uses them (svcommon.media_crypto): the sealed
content secret opened once per process and video, with the keyed file names (manifests)
and segment keys (key responses) memoised, so a key request costs no unsealing and no HKDF
for a segment any session already asked for. Everything here is derived, never stored."""
from __future__ import annotations

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
        self._lists: dict[tuple[str, str], list[str]] = {}

    def file_name(self, rendition: str, variant: str, index: int) -> str:
        return _memo(self._names, self.keys.file_name,
                     (rendition, AUDIO_VARIANT if rendition == AUDIO else variant, index))

    def file_names(self, rendition: str, variant: str, count: int) -> list[str]:
        """The names of indices 0..count-1 of one (rendition, variant), as file_name gives them,
        kept per process as one list (a session's manifest lists every index of every
        rendition; file_name's per-index memo would cost a lookup each, and keep them twice)."""
        variant = AUDIO_VARIANT if rendition == AUDIO else variant
        names = self._lists.get((rendition, variant))
        if names is None or len(names) < count:
            names = self._lists[(rendition, variant)] = [self.keys.file_name(rendition, variant, i)
                                                         for i in range(count)]
        return names if len(names) == count else names[:count]

    def segment_key(self, track: str, variant: str, index: int) -> bytes:
        return _memo(self._segkeys, self.keys.segment_key, (track, AUDIO_VARIANT if track == AUDIO else variant, index))


def _memo(memo: dict, derive, args: tuple):
    """``derive(*args)``, computed once per process (a race only computes it twice)."""
    value = memo.get(args)
    if value is None:
        value = memo[args] = derive(*args)
    return value


def session_variants(media: Media, sid: str, track: str, indices) -> list[str]:
    """The variant a session gets for each segment index: its codeword bit under the video's
    code (video) or the single audio variant (codeword.codeword_bits: a key request asks for
    16, a manifest for every index)."""
    if track == AUDIO:
        return [AUDIO_VARIANT] * len(indices)
    return ["ab"[bit] for bit in codeword.codeword_bits(current_app.config["WATERMARK_SECRET"], sid, indices,
                                                         media.code)]


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
