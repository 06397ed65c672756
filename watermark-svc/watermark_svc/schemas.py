"""Request and response models of watermark-svc's JSON API (the OpenAPI document is made of
them); the fields of the larger answers are listed in docs/api.md."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from svcommon import webhooks
from svcommon.text import has_invisible
from svcommon.openapi import PageQuery, Paged, Strict, VideoStatus, refuse

MAX_WEBHOOK_DESCRIPTION = 200


def _events(value) -> list[str]:
    if not isinstance(value, list) or not value or not all(e in webhooks.EVENT_TYPES for e in value):
        raise refuse("invalid_input", f"events must be a non-empty list of: {', '.join(webhooks.EVENT_TYPES)}")
    return sorted(set(value))


def _description(value) -> str:
    if not isinstance(value, str) or len(value) > MAX_WEBHOOK_DESCRIPTION:
        raise refuse("invalid_input", f"description must be text of at most {MAX_WEBHOOK_DESCRIPTION} characters")
    if has_invisible(value):
        raise refuse("invalid_input", "description contains control or invisible formatting characters "
                                      "(such as bidi overrides or zero-width characters)")
    return value.strip()


def _url(value) -> str:
    if not isinstance(value, str):
        raise refuse("invalid_input", "url must be the URL to send events to (https:// or http://)")
    return value


Events = Annotated[list[str], BeforeValidator(_events),
                   Field(description=f"a non-empty list of: {', '.join(webhooks.EVENT_TYPES)}")]
WebhookDescription = Annotated[str, BeforeValidator(_description),
                               Field(description=f"at most {MAX_WEBHOOK_DESCRIPTION} characters")]


class ConsoleSession(BaseModel):
    """A playback session as the security console lists it."""
    session_id: str
    watermark_id: str = Field(description="what the forensic watermark of this session's media carries")
    active: bool
    state: Literal["active", "ended", "expired"]
    end_reason: str | None
    video_id: str
    video_title: str | None
    user_id: str
    username: str | None
    email: str | None
    user_disabled: bool
    device_id: str | None
    device_user_agent: str | None
    device_agent: str | None = Field(description='the user agent in short: "Chrome 120 on Linux"')
    device_screen: str | None
    device_timezone: str | None
    device_language: str | None
    device_first_seen: str | None
    device_last_seen: str | None
    device_revoked: bool
    ip: str | None
    started_at: str | None
    last_heartbeat_at: str | None
    expires_at: str | None
    ended_at: str | None
    codeword_length: int | None
    key_epoch: int


class PageOf(Paged):
    per_page: int


class ConsoleSessions(PageOf):
    items: list[ConsoleSession]
    active: int = Field(description="live sessions in all (whatever the filters)")


class SecurityEvent(BaseModel):
    id: str
    created_at: str
    kind: str
    service: str
    user_id: str | None = Field(description="the account the event is about")
    username: str | None
    user_disabled: bool
    actor_id: str | None = Field(description="the administrator who acted (console actions)")
    actor_username: str | None
    ip: str | None
    path: str | None
    detail: str | None


class SecurityEvents(PageOf):
    items: list[SecurityEvent]
    kinds: list[str] = Field(description="every kind recorded so far (the filter's choices)")


class Job(BaseModel):
    """A job of the queue (svcommon.jobqueue)."""
    id: str
    kind: str = Field(description="video.process, detection, webhook.deliver …")
    subject: str | None = Field(description="the video or detection it is about")
    status: Literal["queued", "running", "done", "failed", "cancelled", "dead"]
    priority: int
    attempts: int
    max_attempts: int
    progress: float
    step: str | None
    last_error: str | None
    payload: dict[str, Any]
    run_after: str | None
    created_at: str | None
    updated_at: str | None
    finished_at: str | None


class Jobs(BaseModel):
    items: list[Job]


class SuspectUpload(BaseModel):
    """multipart/form-data: the suspect copy."""
    file: bytes = Field(json_schema_extra={"format": "binary"})
    video_id: str | None = Field(None, description="the video it is a copy of, when known")


class DetectionSubmitted(BaseModel):
    job_id: str
    status_url: str
    report_url: str


class AccountRef(BaseModel):
    """The account a session belonged to (username and email null once it is deleted)."""
    id: str | None
    username: str | None
    email: str | None


class SuspectFile(BaseModel):
    name: str | None
    size: int | None = Field(description="bytes")
    sha256: str | None = Field(description="hex digest of the copy as submitted")


class AccusedSession(BaseModel):
    session_id: str | None
    user: AccountRef | None = Field(description="the session's account, or null")
    device_id: str | None
    ip: str | None
    started_at: str | None


class DetectionResult(BaseModel):
    """What the trace concluded (docs/api.md, Detection verdicts: the inconclusive and
    ambiguity objects)."""
    video_id: str | None = Field(description="the video the copy matched (null: none)")
    video_title: str | None
    match: AccusedSession | None = Field(description="the accused session (verdict match only)")
    also_accused: list[str] = Field(description="further sessions accused with the match (colluders)")
    false_accusation_probability: float | None
    segments_read: int
    metadata_layer: Any = Field(description="what the copy's metadata tag said, when it survived")
    method: str | None
    conclusion: str | None = Field(description="the verdict in words")
    verdict: Literal["match", "inconclusive", "no_match"]
    inconclusive: Any = Field(description="null unless the verdict is inconclusive")
    ambiguity: Any = Field(description="null unless the copy matched more than one video closely")
    report_url: str


class Detection(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(description="percent")
    step: str
    suspect_name: str
    created_at: str | None
    finished_at: str | None
    error: str | None = Field(description="why it failed or was cancelled")
    result: DetectionResult | None = Field(description="null until done")


class Detections(BaseModel):
    items: list[Detection]


class DetectionReport(Detection):
    """The evidence report: the detection, every figure the trace computed, the suspect copy."""
    model_config = ConfigDict(extra="allow")
    evidence: dict[str, Any] = Field(description="the trace's stored result, whole (candidates: every video read)")
    suspect: SuspectFile = Field(description="the suspect copy")


class SessionRecord(BaseModel):
    """A playback session's forensic record: who watched, on which device, and the codeword
    its media carried."""
    session: dict[str, Any] = Field(description="session_id, video_id, video_title, user {id, username, email}, "
                                                "device_id, device {id, key_thumbprint, fingerprint, first_seen, "
                                                "last_seen, last_ip, revoked_at}, ip, user_agent, started_at, "
                                                "ended_at, last_heartbeat_at, codeword_length, tag_issued_at")
    codeword_length: int = Field(description="segments the codeword spans")
    codeword_scheme: str = Field(description="the video's codeword construction: uniform or tardos-n3")
    payload: str = Field(description="the session's A/B codeword, one letter per segment")
    metadata_tag: dict[str, Any] = Field(description="{issued_at, format} of the tag in the media's metadata")


class JobQuery(BaseModel):
    status: str | None = None
    kind: str | None = None
    limit: str | None = Field(None, description="ASCII digits; at most 200 returned")


class ConsoleQuery(PageQuery):
    """The filters both security-console lists take (security_console._filter)."""
    user: str | None = Field(None, description="a username or user id (at most 64 characters)")
    since: str | None = Field(None, description="ISO 8601 time; only what happened at or after it")
    until: str | None = Field(None, description="ISO 8601 time, after since; only what happened before it")


class SecuritySessionsQuery(ConsoleQuery):
    state: str | None = None


class SecurityEventsQuery(ConsoleQuery):
    kind: str | None = None


class NewWebhook(Strict):
    """Every problem at once; the URL's target is checked next (422 webhook_url_refused)."""
    model_config = ConfigDict(strict=True, validate_default=True)
    url: Annotated[str, BeforeValidator(_url)] = Field(None, description="https:// (or http://) endpoint")
    events: Events = None
    description: WebhookDescription = ""
    all_videos: bool = Field(False, description="admins only: every video's events")


class WebhookChange(Strict):
    """Only the members given change."""
    events: Events | None = None
    description: WebhookDescription | None = None
    enabled: bool | None = None


class WebhookAttempt(BaseModel):
    """One delivery attempt of an event to the endpoint."""
    id: int
    event_id: str
    event_type: str
    attempt: int = Field(description="1 for the first try, then each retry")
    outcome: Literal["delivered", "failed", "refused"] = Field(
        description="refused: the target resolved to an address deliveries may not reach")
    status_code: int | None = Field(description="the endpoint's HTTP status (null: no answer)")
    latency_ms: int | None
    error: str
    at: str


class WebhookSummary(BaseModel):
    """An endpoint (the signing secret is never shown again after creation or rotation)."""
    id: str
    owner_id: str
    owner: str = Field(description="the owner's username")
    url: str
    description: str
    events: list[Literal[webhooks.EVENT_TYPES]]
    all_videos: bool
    enabled: bool
    disabled_reason: str = Field(description="why deliveries stopped (after repeated failures); empty when enabled")
    created_at: str


class WebhookList(BaseModel):
    items: list[WebhookSummary]


class Webhook(WebhookSummary):
    """The endpoint and its last attempts, newest first."""
    attempts: list[WebhookAttempt] = []


class WebhookWithSecret(Webhook):
    secret: str


class RotatedSecret(BaseModel):
    id: str
    secret: str


class Queued(BaseModel):
    event_id: str
    job_id: str


class UserCounts(BaseModel):
    total: int
    admin: int
    uploader: int
    viewer: int
    disabled: int


class VideoCounts(BaseModel):
    total: int
    by_status: dict[VideoStatus, int]


class Storage(BaseModel):
    """Bytes stored, as the database accounts them."""
    originals_bytes: int = Field(description="originals, the uploads in progress included")
    uploading_bytes: int
    media_bytes: int = Field(description="encrypted renditions, captions and storyboards")
    forensics_bytes: int = Field(description="suspect copies kept for detections")
    total_bytes: int
    media_unmeasured: int = Field(description="videos whose media size is not known yet (older than the count)")


class DayCount(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    sessions: int


class ViewCounts(BaseModel):
    days: list[DayCount] = Field(description="playback sessions started per UTC day, the last 30 (today included)")
    sessions: int
    peak: int
    total_views: int


class Quality(BaseModel):
    startup_sessions: int = Field(description="sessions that reported a startup time")
    startup_ms_p50: int | None
    startup_ms_p95: int | None
    plays: int
    watch_seconds: float
    rebuffer_count: int
    rebuffer_ratio: float | None = Field(description="stalled / (stalled + playing) time; null without playing")


class Qualities(BaseModel):
    last_24h: Quality
    last_7d: Quality


class KindCounts(BaseModel):
    """A job kind's jobs by state (done: in the last 24 hours)."""
    kind: str
    queued: int
    retrying: int
    running: int
    dead: int
    done: int


class DeadJob(BaseModel):
    id: str
    kind: str
    subject: str | None
    subject_title: str | None
    attempts: int
    max_attempts: int
    last_error: str
    updated_at: str | None


class QueueState(BaseModel):
    kinds: list[KindCounts]
    dead_total: int
    dead: list[DeadJob] = Field(description="the newest 20 (all: GET /api/admin/jobs?status=dead)")


class LiveSessions(BaseModel):
    active: int


class Dashboard(BaseModel):
    """The admin dashboard's figures."""
    generated_at: str
    users: UserCounts
    videos: VideoCounts
    storage: Storage
    views: ViewCounts
    quality: Qualities
    queue: QueueState
    sessions: LiveSessions
