"""Who may see and play which video (docs/api.md, streaming-svc): public videos to every
signed-in user, password videos after a correct password (1-hour grant; owner and admins
need none), private videos to their owner and admins only. Disabled accounts get nothing,
checked in the database on every API call (their access tokens stay valid 5 minutes).
Open sessions are re-checked on heartbeats and media requests (their ``lost_reason``: the
rule is migration 026's view, repository.ACCESS_COLS, restated by the key release's
procedure since 029)."""
from __future__ import annotations

from flask import request

from svcommon import security_events
from svcommon.auth import Principal, require_principal
from svcommon.errors import APIError

from . import repository as repo
from .extensions import db


# Why a session was ended by an access change (playback_sessions.end_reason, also written by
# upload-svc on a password/visibility change and by auth-svc when an admin disables a user or a
# device is revoked)
# → the 403 its user gets from then on.
REVOKED = {
    "access_revoked": ("access_revoked", "You no longer have access to this video: its password or visibility "
                                         "changed."),
    "user_disabled": ("account_disabled", "This account is disabled."),
    "device_revoked": ("device_revoked", "This device was revoked."),
}


def revoked_error(reason: str) -> APIError:
    code, message = REVOKED[reason]
    return APIError(403, code, message)


def active_principal(conn, scope: str | None = None) -> Principal:
    """The caller, if their account is still enabled and, for a device-bound token, the device
    not revoked (a revoked device's token is refused at once, not when it expires).
    ``scope``: the API-token scope the route accepts (None: no API token, e.g. playback)."""
    p = require_principal(scope=scope)
    check_account(p, repo.account_state(conn, p.user_id, p.device_id))
    return p


def check_account(p: Principal, state: dict | None) -> None:
    """Refuse (403, with a security event) a disabled or deleted account (``state`` None) and
    a revoked device: ``state`` has repo.account_state's ``disabled`` and ``device_revoked``."""
    if state is None or state["disabled"]:
        security_events.record("disabled_account", f"{request.method} {request.path}", p.user_id)
        raise revoked_error("user_disabled")
    if state["device_revoked"]:
        security_events.record("revoked_device", f"{request.method} {request.path} with device {p.device_id}",
                               p.user_id)
        raise revoked_error("device_revoked")


def device_principal(account_checked_by_session: bool = False) -> Principal:
    """The caller of a playback-session call: a device-bound token with its DPoP proof.
    ``account_checked_by_session``: the caller checks the account itself with its session's
    facts, to spare a query per request: key requests through the session's ``lost_reason``,
    heartbeats with check_account on the account state read in their facts' statement."""
    p = require_principal() if account_checked_by_session else active_principal(db.conn())
    if p.via != "dpop" or not p.jkt:
        security_events.record("dpop_required", f"{request.method} {request.path} via {p.via}", p.user_id)
        raise APIError(401, "dpop_required", "Streaming calls need a device-bound token (Authorization: DPoP) "
                                             "and a DPoP proof.", {"WWW-Authenticate": 'DPoP error="invalid_token"'})
    return p


def may_list(p: Principal, video: dict) -> bool:
    return video["visibility"] != "private" or p.is_admin or video["owner_id"] == p.user_id


def needs_password(p: Principal, video: dict) -> bool:
    """A password video the caller neither owns nor administers: open to them only with a grant
    (asked for only then: a query spared for every other video)."""
    return video["visibility"] == "password" and not p.is_admin and video["owner_id"] != p.user_id


def is_locked(p: Principal, video: dict, has_grant: bool) -> bool:
    return needs_password(p, video) and not has_grant


def visible_video(conn, p: Principal, video_id: str) -> dict:
    """The video if the caller may know it exists; ready or not. 404 otherwise."""
    video = repo.video_by_id(conn, video_id) if len(video_id) <= 64 else None
    if video is None:
        raise APIError(404, "not_found", "This video does not exist or was deleted.")
    if not may_list(p, video):
        raise APIError(403, "private", "This video is private: only its owner can watch it.")
    return video


def gone_meanwhile() -> APIError:
    """The video was deleted between the checks and the write that would point at it."""
    return APIError(409, "gone_meanwhile", "This video was deleted meanwhile.")


def ready(video: dict) -> None:
    if video["status"] == "failed":
        raise APIError(410, "unavailable", "This video is unavailable: its processing failed.")
    if video["status"] != "ready":
        raise APIError(409, "not_ready", "This video is still being processed; try again in a moment.")


def playable_video(conn, p: Principal, video_id: str) -> dict:
    """The video if the caller may play it now; otherwise the precise refusal."""
    video = visible_video(conn, p, video_id)
    ready(video)
    if needs_password(p, video) and not repo.has_grant(conn, p.user_id, video["id"]):
        raise APIError(403, "locked", "This video is password-protected: enter its password first.")
    return video
