"""Request and response models of streaming-svc's JSON API (the OpenAPI document is made of
them). The playback formats a schema cannot say (key wrapping, segment ciphertext) are in
docs/api.md."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from svcommon.openapi import Loose


class LibraryQuery(BaseModel):
    q: str | None = None
    page: str | None = Field(None, description="1-based page, ASCII digits")


class LibraryItem(BaseModel):
    id: str
    title: str
    description: str | None
    duration: float | None
    views: int
    visibility: Literal["public", "private", "password"]
    thumbnail_url: str | None
    poster_url: str | None
    locked: bool
    created_at: str | None


class LibraryPage(BaseModel):
    items: list[LibraryItem]
    page: int
    pages: int
    total: int
    q: str


class LibraryVideo(LibraryItem):
    status: Literal["processing", "ready", "failed"]


class Unlock(BaseModel):
    password: str | None = Field(None, description="the video's password (1-256 characters)")


class OpenSession(BaseModel):
    video_id: str | None = Field(None, description="required")
    # Any: the view refuses anything but an EC P-256 JWK as 400 invalid_public_key
    client_public_key: Any = Field(None, json_schema_extra={"type": "object"},
                                   description="required: the player's ECDH P-256 public JWK")


class Session(Loose):
    """session_id, server_public_key, wrapped_cek, key_epoch, expires_at, manifest_url, hls_url,
    storyboard_url, heartbeat_interval, keys, video, view_after_seconds (docs/api.md)."""
    session_id: str
    key_epoch: int
    expires_at: str
    manifest_url: str


class Heartbeat(BaseModel):
    position: float | None = Field(None, description="seconds into the video")
    # Any: a report that is no valid object is 400 invalid_qoe (viewing.parse_report)
    qoe: Any = Field(None, json_schema_extra={"type": "object"},
                     description="the player's quality report (docs/api.md, Views and QoE)")


class HeartbeatAnswer(Loose):
    expires_at: str
    key_epoch: int
    views: int
    view_counted: bool


class EndSession(BaseModel):
    qoe: Any = Field(None, json_schema_extra={"type": "object"}, description="the player's final report")


class KeyRequest(BaseModel):
    track: Literal["video", "audio"] | None = Field(None, description="required")
    from_: int | None = Field(None, alias="from", ge=0)
    count: int | None = Field(None, ge=1)
    key_epoch: int | None = Field(None, ge=0)


class WrappedKey(BaseModel):
    index: int
    nonce: str
    ciphertext: str


class KeyBatch(BaseModel):
    track: Literal["video", "audio"]
    key_epoch: int
    keys: list[WrappedKey]


class DownloadRequest(BaseModel):
    rendition: str | None = None


class DownloadTicket(BaseModel):
    download_url: str
    expires_at: str
    rendition: str


class SessionSecurity(Loose):
    """state, device, watermark_id, expiry, key_epoch, next_rotation_at, protections (docs/api.md)."""
    state: str


class EndedByAdmin(BaseModel):
    session_id: str
    ended_at: str
    end_reason: Literal["ended_by_admin"]
