"""Request and response models of upload-svc's JSON API (the OpenAPI document is made of them).
The multipart uploads are streamed by the views themselves (never parsed whole), so their
models only document the form; tus and server-sent events: docs/api.md."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from svcommon.openapi import Loose

Visibility = Literal["public", "private", "password"]


class Video(Loose):
    """Every field: docs/api.md (a video's JSON)."""
    id: str
    owner_id: str
    title: str
    visibility: Visibility
    status: str


class OneVideo(BaseModel):
    video: Video


class Usage(BaseModel):
    used_bytes: int
    quota_bytes: int | None
    available_bytes: int | None


class MyVideos(BaseModel):
    items: list[Video]
    usage: Usage


class VideoEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    description: str | None = None
    visibility: Visibility | None = None
    password: str | None = None
    downloads_allowed: bool | None = None


class VideoUpload(BaseModel):
    """multipart/form-data, streamed; ``file`` is the video."""
    title: str | None = None
    description: str | None = None
    visibility: Visibility | None = None
    password: str | None = None
    file: bytes = Field(json_schema_extra={"format": "binary"})


class CaptionUpload(BaseModel):
    """multipart/form-data: a WebVTT or SRT file."""
    lang: str = Field(description="a language tag: en, pt-BR")
    label: str | None = Field(None, max_length=100)
    file: bytes = Field(json_schema_extra={"format": "binary"})


class Caption(BaseModel):
    id: str
    lang: str
    label: str
    source_format: Literal["vtt", "srt"]
    cues: int
    size: int
    created_at: str | None


class OneCaption(BaseModel):
    caption: Caption


class Captions(BaseModel):
    items: list[Caption]


class Analytics(Loose):
    """video_id, title, duration, views, plays, watch_seconds, average_watch_seconds,
    rebuffer_ratio, retention (docs/api.md)."""
    video_id: str


class TusCreate(BaseModel):
    """tus 1.0 creation (docs/api.md, upload-svc): the headers; no body."""
    tus_resumable: str = Field(None, alias="Tus-Resumable", description="1.0.0 (required)")
    upload_length: str = Field(None, alias="Upload-Length", description="the file's size in bytes (required)")
    upload_metadata: str = Field(None, alias="Upload-Metadata",
                                        description="comma-separated `key base64(value)`: filename, title")


class TusOffset(BaseModel):
    tus_resumable: str = Field(None, alias="Tus-Resumable", description="1.0.0 (required)")


class TusPatch(BaseModel):
    """A chunk: Content-Type application/offset+octet-stream, the bytes from Upload-Offset."""
    tus_resumable: str = Field(None, alias="Tus-Resumable", description="1.0.0 (required)")
    upload_offset: str = Field(None, alias="Upload-Offset", description="where this chunk starts (required)")
    upload_checksum: str = Field(None, alias="Upload-Checksum", description="optional: `sha1 <base64>`")
