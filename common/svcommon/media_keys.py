"""Pure key builders for a video's derived objects under media/{video_id}/: the layout the
media workers write and streaming-svc reads."""
from __future__ import annotations

from .filestore import media_prefix


def media_key(video_id: str, relative: str) -> str:
    """``relative`` is a path inside the pipeline's output tree, e.g. video/720p/a/00003.m4s."""
    return media_prefix(video_id) + relative


def segment_key(video_id: str, rendition: str, variant: str, index: int) -> str:
    return media_key(video_id, f"video/{rendition}/{variant}/{index:05d}.m4s")


def init_key(video_id: str, rendition: str) -> str:
    return media_key(video_id, f"video/{rendition}/init.mp4")


def audio_segment_key(video_id: str, index: int) -> str:
    return media_key(video_id, f"audio/{index:05d}.m4s")


def audio_init_key(video_id: str) -> str:
    return media_key(video_id, "audio/init.mp4")


def encrypted_segment_key(video_id: str, rendition: str, file_name: str) -> str:
    """Delivery v2: a segment stored as ciphertext under its keyed name
    (svcommon.media_crypto.VideoKeys.file_name), e.g. enc/720p/00003-<32 hex>.m4s. The
    public URL /media/{video_id}/{rendition}/{file_name} maps onto exactly this key."""
    return media_key(video_id, f"enc/{rendition}/{file_name}")
