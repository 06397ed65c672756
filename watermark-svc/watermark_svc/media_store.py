"""A processed video's objects in the store, delivery v2 (docs/api.md, "Encrypted media").
Layered like the rest of the storage code: key builders (svcommon.media_keys, names from
svcommon.media_crypto) → the verbs below → one client (svcommon.filestore.FileStore).

Every media segment is stored only as ciphertext under its keyed name
(``encrypted_segment_key``); init segments (codec setup, no samples), poster and thumbnail
stay plaintext. The segments a video has are listed by its metadata (pipeline.py):
``renditions[].name`` × variants a/b × ``segment_count``, plus ``audio.segment_sizes``.
Those lists keep the *plaintext* sizes: a stored segment is always exactly
``SEALED_OVERHEAD`` bytes larger, so nothing needs a second list."""
from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from svcommon.filestore import FileStore, media_prefix
from svcommon.media_crypto import AUDIO, AUDIO_VARIANT, NONCE_LEN, TAG_LEN, VideoKeys
from svcommon.media_keys import audio_segment_key, encrypted_segment_key, media_key, segment_key

from .media.abencode import VARIANTS

SEALED_OVERHEAD = NONCE_LEN + TAG_LEN        # 28 bytes per stored segment
SEALED_TYPE = "application/octet-stream"     # ciphertext: nothing a player could take as media
# Delivery-v1 plaintext segments, relative to media/{video}/ (what conversion removes).
PLAIN_SEGMENT_RE = re.compile(r"^(video/[a-z0-9]{1,16}/[ab]|audio)/\d{5}\.m4s$")


@dataclass(frozen=True)
class Segment:
    rendition: str        # a video rung ("720p") or "audio"
    variant: str          # "a" | "b"; audio: media_crypto.AUDIO_VARIANT
    index: int

    @property
    def relative(self) -> str:
        """Its path in the pipeline's output tree (and, before v2, in the store)."""
        if self.rendition == AUDIO:
            return f"audio/{self.index:05d}.m4s"
        return f"video/{self.rendition}/{self.variant}/{self.index:05d}.m4s"

    def plain_key(self, video_id: str) -> str:
        if self.rendition == AUDIO:
            return audio_segment_key(video_id, self.index)
        return segment_key(video_id, self.rendition, self.variant, self.index)

    def sealed_key(self, keys: VideoKeys) -> str:
        return encrypted_segment_key(keys.video_id, self.rendition,
                                     keys.file_name(self.rendition, self.variant, self.index))


def stored_bytes(meta: dict) -> int:
    """Bytes the published media of ``meta`` takes in the store: every listed segment sealed,
    plus the init segments (video_media.media_bytes; migration 017 computes the same in SQL
    for rows published before it)."""
    total = sum(int(r.get("init_size") or 0) + sum(len(r["segments"][v]) * SEALED_OVERHEAD + sum(r["segments"][v])
                                                    for v in VARIANTS) for r in meta.get("renditions") or [])
    audio = meta.get("audio")
    if audio:
        sizes = audio.get("segment_sizes") or []
        total += int(audio.get("init_size") or 0) + sum(sizes) + len(sizes) * SEALED_OVERHEAD
    return total


def segments(meta: dict) -> list[Segment]:
    """Every media segment of a processed video, from its metadata."""
    n = int(meta["segment_count"])
    out = [Segment(r["name"], v, i) for r in meta["renditions"] for v in VARIANTS for i in range(n)]
    audio = meta.get("audio")
    if audio:
        out += [Segment(AUDIO, AUDIO_VARIANT, i) for i in range(len(audio["segment_sizes"]))]
    return out


def sealed_prefix(video_id: str) -> str:
    return media_key(video_id, "enc/")


def put_sealed(fs: FileStore, keys: VideoKeys, seg: Segment, plaintext: bytes) -> None:
    body = keys.encrypt(seg.rendition, seg.variant, seg.index, plaintext)
    fs.put_stream(seg.sealed_key(keys), body, length=len(body), content_type=SEALED_TYPE)


def stored_keys(fs: FileStore, prefix: str) -> set[str]:
    return {o["key"] for o in fs.list(prefix)}


def put_plain(fs: FileStore, video_id: str, relative: str, path: Path) -> None:
    """An object that is not a media segment (init segment, poster, thumbnail), as it is."""
    ctype = "video/mp4" if path.suffix == ".mp4" else (mimetypes.guess_type(path.name)[0] or SEALED_TYPE)
    with open(path, "rb") as body:
        fs.put_stream(media_key(video_id, relative), body, length=path.stat().st_size, content_type=ctype)


def plain_segment_keys(fs: FileStore, video_id: str) -> list[str]:
    """Delivery-v1 plaintext segment objects still in the store."""
    prefix = media_prefix(video_id)
    return sorted(k for k in stored_keys(fs, prefix) if PLAIN_SEGMENT_RE.match(k[len(prefix):]))


def plain_segment_removals(fs: FileStore, video_id: str) -> Iterator[int]:
    """Delete the delivery-v1 plaintext segments one step per ``next()``, yielding how many
    objects each step removed: a variant's folder (video/{r}/{a|b}/ holds only segments)
    at once, audio segments one by one (audio/ also holds the init segment). Lazy, so a
    caller with a time budget stops between steps."""
    keys = plain_segment_keys(fs, video_id)
    rel = len(media_prefix(video_id))
    for folder in sorted({k[:k.rindex("/") + 1] for k in keys if k[rel:].startswith("video/")}):
        yield fs.delete_prefix(folder)
    for key in (k for k in keys if k[rel:].startswith("audio/")):
        fs.delete(key)
        yield 1
