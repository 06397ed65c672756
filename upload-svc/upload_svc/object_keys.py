"""Object keys for a video (pure). Ids are ours; the user's file name never reaches a key."""
from __future__ import annotations

import secrets

from svcommon.filestore import captions_prefix, media_prefix, original_prefix


def original_key(video_id: str) -> str:
    return f"{original_prefix(video_id)}original"


def tail_key(video_id: str) -> str:
    """Bytes of a tus upload that do not fill a part yet. A fresh name per write, so the
    previous tail stays valid until the database points at the new one."""
    return f"{original_prefix(video_id)}tus-tail-{secrets.token_hex(8)}"


def caption_key(video_id: str, caption_id: str) -> str:
    return f"{captions_prefix(video_id)}{caption_id}.vtt"


def video_prefixes(video_id: str) -> list[str]:
    """Everything stored for a video: the original (and tus tails), all derived media and
    its caption tracks."""
    return [original_prefix(video_id), media_prefix(video_id), captions_prefix(video_id)]
