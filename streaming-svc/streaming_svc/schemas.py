"""Request and response models of streaming-svc's JSON API (the OpenAPI document is made of
them). The playback formats a schema cannot say (key wrapping, segment ciphertext) are in
docs/api.md."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import current_app
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from svcommon.openapi import Paged, Strict, Visibility, refuse

Track = Literal["video", "audio"]

MAX_RANGES = 200
WEEK_MS = 7 * 24 * 3600 * 1000
# Each figure of a QoE report: its upper bound (a report past it is malformed, not capped).
QOE_BOUNDS = {"startup_ms": 600_000, "watch_ms": WEEK_MS, "rebuffer_count": 1_000_000, "rebuffer_ms": WEEK_MS,
              "bitrate_switches": 1_000_000}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _figure(name: str):
    bound = QOE_BOUNDS[name]

    def check(value):
        if value is None and name == "startup_ms":
            return None
        if type(value) is not int or not 0 <= value <= bound:
            raise refuse("invalid_qoe", f"qoe.{name} must be an integer from 0 to {bound}")
        return value
    return Annotated[int | None if name == "startup_ms" else int, BeforeValidator(check),
                     Field(description=f"0-{bound}")]


def _ranges(value):
    if not isinstance(value, list) or len(value) > MAX_RANGES or not all(
            isinstance(r, list) and len(r) == 2 and all(_is_number(x) for x in r) and 0 <= r[0] <= r[1] < 1e7
            for r in value):
        raise refuse("invalid_qoe", f"qoe.ranges must be at most {MAX_RANGES} [start, end] pairs of seconds, "
                                    "start <= end")
    return [(float(a), float(b)) for a, b in value]


class QoE(BaseModel):
    """The player's quality report for its session (docs/api.md, Views and QoE): what it
    measured so far; every problem is a 400 ``invalid_qoe`` naming the member."""
    startup_ms: _figure("startup_ms") = None
    watch_ms: _figure("watch_ms") = 0
    rebuffer_count: _figure("rebuffer_count") = 0
    rebuffer_ms: _figure("rebuffer_ms") = 0
    bitrate_switches: _figure("bitrate_switches") = 0
    ranges: Annotated[list[tuple[float, float]], BeforeValidator(_ranges)] = Field(
        [], description="the stretches of the video played: [start, end] seconds")

    @model_validator(mode="before")
    @classmethod
    def _object(cls, value):
        if not isinstance(value, dict):
            raise refuse("invalid_qoe", "qoe must be an object")
        unknown = sorted(set(value) - set(cls.model_fields))
        if unknown:
            raise refuse("invalid_qoe", f"qoe has unknown member(s): {', '.join(unknown)[:100]}")
        return value


class LibraryQuery(BaseModel):
    q: str | None = None
    page: str | None = Field(None, description="1-based page, ASCII digits")


class LibraryItem(BaseModel):
    id: str
    title: str
    description: str | None
    duration: float | None
    views: int
    visibility: Visibility
    thumbnail_url: str | None
    poster_url: str | None
    locked: bool
    created_at: str | None


class LibraryPage(Paged):
    items: list[LibraryItem]
    q: str


class LibraryVideo(LibraryItem):
    status: Literal["processing", "ready", "failed"]


class Unlock(BaseModel):
    password: str | None = Field(None, description="the video's password (1-256 characters)")


class OpenSession(Strict):
    video_id: str = Field(min_length=1, max_length=64)
    purpose: Literal["playback", "download"] = Field(
        "playback", description="download: a session only to download the video (Downloads in docs/api.md): "
                                "no segment keys, not counted toward the stream limit, ended when its download starts")
    # Any: the view refuses anything but an EC P-256 JWK as 400 invalid_public_key
    client_public_key: Any = Field(None, json_schema_extra={"type": "object"},
                                   description="required: the player's ECDH P-256 public JWK")


class EcPublicJwk(BaseModel):
    """An EC P-256 public key as a JWK (RFC 7517)."""
    model_config = ConfigDict(extra="allow")
    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str


class WrappedCek(BaseModel):
    """The session's content-encryption key under the KEK (AES-256-GCM, AAD the session id;
    base64url): docs/api.md, Keys."""
    nonce: str
    ciphertext: str


class WrappedKey(BaseModel):
    """A segment key under the session's CEK (AAD ``session:track:index``; base64url)."""
    index: int
    nonce: str
    ciphertext: str


class FirstKeys(BaseModel):
    """The keys of each track's first segments (empty: the player asks POST …/keys)."""
    key_epoch: int
    video: list[WrappedKey]
    audio: list[WrappedKey]


class SessionVideo(BaseModel):
    id: str
    title: str
    duration: float | None


class Session(BaseModel):
    """A new playback session: the key exchange's answer and where its media is."""
    session_id: str
    server_public_key: EcPublicJwk = Field(description="the server's ephemeral ECDH key (discarded after)")
    wrapped_cek: WrappedCek
    key_epoch: int
    expires_at: str
    manifest_url: str = Field(description="DASH manifest (session-bound URL)")
    hls_url: str = Field(description="HLS master playlist (session-bound URL)")
    storyboard_url: str | None = Field(description="WebVTT of the seek previews; null without a storyboard")
    heartbeat_interval: int = Field(description="seconds between heartbeats")
    keys: FirstKeys
    view_after_seconds: int = Field(description="playing time after which the session may count as a view")
    video: SessionVideo


class Heartbeat(Strict):
    position: float = Field(0, ge=0, lt=1e7, description="seconds into the video")
    qoe: QoE | None = None


class HeartbeatAnswer(BaseModel):
    expires_at: str
    key_epoch: int
    heartbeat_interval: int
    wrapped_cek: WrappedCek | None = Field(None, description="present when the key epoch just rotated: "
                                                             "the new epoch's CEK")
    views: int
    view_counted: bool
    renditions: list[str] = Field(description="the video renditions the session's manifest lists now, "
                                              "largest first: more than the player loaded while higher "
                                              "rungs were still encoding (reload the manifest to offer them)")
    storyboard_url: str | None = Field(None, description="WebVTT of the seek previews once the video has a storyboard "
                                                         "(made after the ladder: a session opened before it got null)")


class EndSession(Strict):
    qoe: QoE | None = Field(None, description="the player's final report")


class KeyRequest(BaseModel):
    """Checked by the view after it defers the DPoP proof's record (keys.py)."""
    track: Track
    from_: int = Field(alias="from", ge=0, description="the first segment index")
    count: int = Field(ge=1, description="how many keys; at most KEYS_MAX_PER_REQUEST (16)")
    key_epoch: int | None = Field(None, ge=0, description="absent: the session's current epoch")

    @field_validator("track", mode="before")
    @classmethod
    def _track(cls, value):
        if value not in ("video", "audio"):
            raise refuse("invalid_input", 'track must be "video" or "audio"')
        return value

    @field_validator("from_", "count", "key_epoch", mode="before")
    @classmethod
    def _index(cls, value, info):
        name = {"from_": "from"}.get(info.field_name, info.field_name)
        low = 1 if name == "count" else 0
        high = int(current_app.config["KEYS_MAX_PER_REQUEST"]) if name == "count" else None
        if type(value) is not int or value < low or (high is not None and value > high):
            raise refuse("invalid_input", f"{name} must be an integer {f'{low}..{high}' if high else f'>= {low}'}")
        return value


class KeyBatch(BaseModel):
    track: Track
    key_epoch: int
    keys: list[WrappedKey]


class DownloadRequest(Strict):
    rendition: str | None = Field(None, description="one of the video's renditions (e.g. 720p); "
                                                    "absent: the best")


class DownloadTicket(BaseModel):
    download_url: str
    expires_at: str
    rendition: str


class SessionDevice(BaseModel):
    id: str
    key_thumbprint: str = Field(description="RFC 7638 thumbprint of the device's DPoP key")
    bound: bool
    this_device: bool
    name: str | None
    screen: str | None
    timezone: str | None
    language: str | None
    first_seen_at: str | None


class KeyPacing(BaseModel):
    burst_seconds: float
    pace_factor: float
    released_seconds: dict[Track, float]


class ForensicWatermark(BaseModel):
    ab_codeword: bool
    codeword_length: int
    metadata_tag: bool


class Protections(BaseModel):
    """What protects this session (the texts describe the mechanisms; docs/api.md)."""
    device_binding: str
    key_exchange: str
    content_encryption: str
    key_release_pacing: KeyPacing
    key_rotation_seconds: int
    key_grace_seconds: int
    session_ttl_seconds: int
    concurrent_stream_limit: int
    forensic_watermark: ForensicWatermark


class SessionSecurity(BaseModel):
    """The player's security panel."""
    session_id: str
    video_id: str
    state: Literal["live", "ended", "expired"]
    device: SessionDevice
    watermark_id: str
    started_at: str | None
    expires_at: str | None
    ended_at: str | None
    last_heartbeat_at: str | None
    key_epoch: int
    epoch_started_at: str | None
    next_rotation_at: str | None
    protections: Protections


class EndedByAdmin(BaseModel):
    session_id: str
    ended_at: str
    end_reason: Literal["ended_by_admin"]
