"""Who may see and play which video (BRIEF "Access control"): public videos to every
signed-in user, password videos after a correct password (1-hour grant; owner and admins
need none), private videos to their owner and admins only."""
from __future__ import annotations

from svcommon.auth import Principal
from svcommon.errors import APIError

from . import repository as repo


def may_list(p: Principal, video: dict) -> bool:
    return video["visibility"] != "private" or p.is_admin or video["owner_id"] == p.user_id


def is_locked(p: Principal, video: dict, has_grant: bool) -> bool:
    return (video["visibility"] == "password" and not p.is_admin and video["owner_id"] != p.user_id
            and not has_grant)


def visible_video(conn, p: Principal, video_id: str) -> dict:
    """The video if the caller may know it exists; ready or not. 404 otherwise."""
    video = repo.video_by_id(conn, video_id) if len(video_id) <= 64 else None
    if video is None:
        raise APIError(404, "not_found", "This video does not exist or was deleted.")
    if not may_list(p, video):
        raise APIError(403, "private", "This video is private: only its owner can watch it.")
    return video


def ready(video: dict) -> None:
    if video["status"] == "failed":
        raise APIError(410, "unavailable", "This video is unavailable: its processing failed.")
    if video["status"] != "ready":
        raise APIError(409, "not_ready", "This video is still being processed; try again in a moment.")


def playable_video(conn, p: Principal, video_id: str) -> dict:
    """The video if the caller may play it now; otherwise the precise refusal."""
    video = visible_video(conn, p, video_id)
    ready(video)
    if is_locked(p, video, repo.has_grant(conn, p.user_id, video["id"])):
        raise APIError(403, "locked", "This video is password-protected: enter its password first.")
    return video
