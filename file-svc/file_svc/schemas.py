"""The models of file-svc's internal API: its own OpenAPI document, served on its port only
(the gateway has no route to file-svc). Callers are our services with a service token."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from svcommon.openapi import Loose

SERVICE = [{"bearer": []}]   # a service token (audience streamvault-internal), never a user's


class PartQuery(BaseModel):
    upload_id: str = Field(None, description="present: answer {n, url, expires_in}, the URL to PUT this "
                           "multipart upload's part to (straight to S3), instead of the object")
    part: str = Field(None, description="with upload_id: the part number (1-based)")
    length: str = Field(None, description="with upload_id: the part's exact size in bytes")


class PostQuery(BaseModel):
    uploads: str = Field(None, description="present: start a multipart upload")
    upload_id: str = Field(None, description="present: complete this multipart upload")


class AbortQuery(BaseModel):
    upload_id: str = Field(None, description="present: abort this multipart upload")


class PrefixQuery(BaseModel):
    prefix: str = Field(None, description="the caller's own key prefix")


class ListQuery(PrefixQuery):
    continuation: str = Field(None, description="the previous page's `next`")
    limit: str = Field(None, description="ASCII digits")


class Stored(Loose):
    """key, size, etag (or the multipart answer)."""


class Deleted(BaseModel):
    deleted: int
    prefix: str


class Listing(BaseModel):
    items: list[dict[str, Any]]
    next: str | None
    prefix: str
