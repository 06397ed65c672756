"""Request and response models of watermark-svc's JSON API (the OpenAPI document is made of
them); the fields of the larger answers are listed in docs/api.md."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from svcommon.openapi import Loose


class Items(BaseModel):
    items: list[dict[str, Any]]


class Page(Loose):
    """items, page, pages, total (+ the filters' choices)."""
    items: list[dict[str, Any]]


class SuspectUpload(BaseModel):
    """multipart/form-data: the suspect copy."""
    file: bytes = Field(json_schema_extra={"format": "binary"})
    video_id: str | None = Field(None, description="the video it is a copy of, when known")


class DetectionSubmitted(BaseModel):
    job_id: str
    status_url: str
    report_url: str


class Detection(Loose):
    """status, result (docs/api.md)."""
    status: str


class SessionRecord(Loose):
    codeword_length: int | None


class JobQuery(BaseModel):
    status: str | None = None
    kind: str | None = None
    limit: str | None = Field(None, description="ASCII digits; at most 200 returned")


class SecuritySessionsQuery(BaseModel):
    state: str | None = None
    q: str | None = None
    page: str | None = None
    per_page: str | None = None


class SecurityEventsQuery(BaseModel):
    kind: str | None = None
    q: str | None = None
    page: str | None = None
    per_page: str | None = None


class NewWebhook(BaseModel):
    url: str | None = Field(None, description="required: https:// (or http://) endpoint")
    events: list[str] | None = Field(None, description="required: video.ready, video.failed, video.deleted, leak.traced")
    description: str | None = None
    all_videos: bool | None = Field(None, description="admins only: every video's events")


class WebhookChange(BaseModel):
    events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


class Webhook(Loose):
    """The endpoint and its last attempts (docs/api.md, Webhooks)."""
    id: str
    url: str


class WebhookWithSecret(Webhook):
    secret: str


class RotatedSecret(BaseModel):
    id: str
    secret: str


class Queued(BaseModel):
    event_id: str
    job_id: str


class Dashboard(Loose):
    """Every figure: docs/api.md (watermark-svc)."""
    generated_at: str
