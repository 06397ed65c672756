"""Request and response models of upload-svc's JSON API (the OpenAPI document is made of them),
and the input rules of video metadata: each failure a clear 400 naming the field. The multipart
uploads are streamed by the views themselves (never parsed whole): they check the form's fields
(and tus's Upload-Metadata) with NewVideo / NewCaption; tus and server-sent events: docs/api.md."""
from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal, get_args

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo,
                      field_validator, model_validator)

from svcommon.openapi import Strict, VideoStatus, Visibility, refuse
from svcommon.text import has_invisible, strip_invisible

VISIBILITIES: tuple[str, ...] = get_args(Visibility)
MAX_TITLE, MAX_DESCRIPTION, MAX_FILENAME = 200, 5000, 255
MAX_CAPTION_LABEL = 100
# A BCP 47 language tag as players and the DASH lang attribute take it: en, pt-BR, zh-Hant-TW.
PASSWORD_REQUIRED = "a 'password' is required for password-protected videos"
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}$")


def _text(name: str, max_len: int, multiline: bool = False) -> AfterValidator:
    """A text field: NFC, trimmed, one line unless ``multiline``, no invisible formatting."""
    def check(value: str) -> str:
        value = unicodedata.normalize("NFC", value).strip()
        if not multiline:
            value = value.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        if has_invisible(value):
            raise refuse("invalid_input", f"'{name}' contains control or invisible formatting characters "
                                          "(such as bidi overrides or zero-width characters)")
        if len(value) > max_len:
            raise refuse("invalid_input", f"'{name}' is too long (max {max_len} characters)")
        return value
    return AfterValidator(check)


def _visibility(value):
    if value in (None, ""):
        return None
    if value not in VISIBILITIES:
        raise refuse("invalid_input", "'visibility' must be one of public, private, password")
    return value


def _password(value):
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not 4 <= len(value) <= 256:
        raise refuse("invalid_input", "'password' must be 4-256 characters")
    return value


def display_filename(value) -> str:
    """The user's file name, for display and as the download name only (never a key)."""
    if not isinstance(value, str):
        return ""
    value = unicodedata.normalize("NFC", value).replace("\\", "/").split("/")[-1]
    value = strip_invisible(value).replace("\r", "").replace("\n", "").replace("\t", " ").strip()
    return value[:MAX_FILENAME]


def _language(value) -> str:
    if not isinstance(value, str) or len(value) > 35 or not LANGUAGE_TAG.match(value.strip()):
        raise refuse("invalid_input", "'lang' must be a language tag such as en, fr or pt-BR")
    return value.strip()


Title = Annotated[str, _text("title", MAX_TITLE), Field(description=f"at most {MAX_TITLE} characters, one line")]
Description = Annotated[str, _text("description", MAX_DESCRIPTION, multiline=True),
                        Field(description=f"at most {MAX_DESCRIPTION} characters")]
OptionalVisibility = Annotated[Visibility | None, BeforeValidator(_visibility)]
VideoPassword = Annotated[str | None, BeforeValidator(_password),
                          Field(description="4-256 characters; required to make a video password-protected")]


class NewVideo(Strict):
    """A new video's metadata: the upload form's fields, or tus's Upload-Metadata (its ``filename``)."""
    title: Title = ""
    description: Description = ""
    visibility: OptionalVisibility = Field(None, description="private when absent")
    password: VideoPassword = Field(None, validate_default=True)
    filename: Annotated[str, BeforeValidator(display_filename)] = Field(
        "", description="tus only (the form's file part names it): for display and the download name")

    @field_validator("password")
    @classmethod
    def _required(cls, value, info: ValidationInfo):
        if info.data.get("visibility") == "password" and not value:
            raise refuse("invalid_input", PASSWORD_REQUIRED)
        return value

    @model_validator(mode="after")
    def _defaults(self):
        self.visibility = self.visibility or "private"
        if not self.title:
            stem = self.filename.rsplit(".", 1)[0] if "." in self.filename else self.filename
            self.title = stem[:MAX_TITLE] or "Untitled video"
        return self


class LiveState(BaseModel):
    """Where a video stands: what /api/videos/mine, a video's JSON and its progress stream
    (GET /api/videos/{video_id}/events) say."""
    status: VideoStatus
    progress: float = Field(description="percent of the current stage: the upload's bytes, then processing")
    message: str = Field(description="what the dashboard shows (the stage, or why processing failed)")
    encoding: bool = Field(description="processing work is still to come (a ready video may still be "
                                       "encoding its higher rungs)")
    encode_progress: float = Field(description="percent of all of the video's processing")
    thumbnail_url: str | None


class Video(LiveState):
    """A video as its owner (or an admin) sees it."""
    id: str
    owner_id: str
    title: str
    description: str
    visibility: Visibility
    has_password: bool
    downloads_allowed: bool
    size: int = Field(description="bytes of the original")
    duration: float | None = Field(description="seconds (null until probed)")
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    container: str | None
    original_filename: str | None
    views: int
    created_at: str | None
    updated_at: str | None
    ready_at: str | None


class OneVideo(BaseModel):
    video: Video


class Usage(BaseModel):
    """The caller's storage against their upload quota (docs/api.md, upload-svc)."""
    used_bytes: int
    quota_bytes: int | None = Field(description="null: unlimited")
    available_bytes: int | None = Field(description="null: unlimited")


class MyVideos(BaseModel):
    items: list[Video]
    usage: Usage


class VideoEdit(Strict):
    """Only the members given change; a password is required to make a video password-protected
    that has none yet."""
    model_config = ConfigDict(strict=True, extra="forbid")
    title: Title | None = Field(None, description="empty or null: unchanged")
    description: Description | None = None
    visibility: OptionalVisibility = None
    password: VideoPassword = None
    downloads_allowed: bool | None = None


class VideoUpload(NewVideo):
    """multipart/form-data, streamed; ``file`` is the video (its name is the filename)."""
    file: bytes = Field(json_schema_extra={"format": "binary"})


class NewCaption(Strict):
    model_config = ConfigDict(strict=True, validate_default=True)
    lang: Annotated[str, BeforeValidator(_language)] = Field("", description="a language tag: en, pt-BR")
    label: Annotated[str, _text("label", MAX_CAPTION_LABEL)] = Field(
        "", description="what the player's captions menu shows (the language tag when empty)")

    @model_validator(mode="after")
    def _label(self):
        self.label = self.label or self.lang
        return self


class CaptionUpload(NewCaption):
    """multipart/form-data: a WebVTT or SRT file."""
    file: bytes = Field(json_schema_extra={"format": "binary"})


class Caption(BaseModel):
    id: str
    lang: str
    label: str
    source_format: Literal["vtt", "srt"]
    cues: int
    size: int = Field(description="bytes of the stored WebVTT")
    created_at: str | None


class OneCaption(BaseModel):
    caption: Caption


class Captions(BaseModel):
    items: list[Caption]


class RetentionPoint(BaseModel):
    percent: int = Field(description="where the slice starts, in percent of the duration")
    plays: int = Field(description="plays that watched at least half of the slice")
    share: float = Field(description="plays / all plays (0-1)")


class Retention(BaseModel):
    slice_percent: int
    points: list[RetentionPoint]


class Analytics(BaseModel):
    """The owner's figures (docs/api.md, Views and QoE: what counts as a view and a play)."""
    video_id: str
    title: str
    duration: float | None
    views: int
    plays: int = Field(description="playback sessions that played")
    watch_seconds: float
    average_watch_seconds: float
    rebuffer_ratio: float = Field(description="stalled time / (playing + stalled time)")
    retention: Retention


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
