"""Webhook events, outbox style: ``emit`` runs in the transaction that decides the event
(a video published, failed or deleted, a trace that matched) and writes the event and one
'webhook.deliver' job per subscribed endpoint there, so an event is sent exactly when its
cause committed and nothing is lost if a process dies after the commit. The delivery
(signing, the address checks, the attempts' record) is watermark-svc's (webhook_delivery.py),
run by the media workers like every other job.

Who gets an event: the enabled endpoints of the video's owner that subscribed to its type,
and those of administrators registered for every video (``all_videos``; only while their
owner is still an admin)."""
from __future__ import annotations

import json
import uuid

from mysql.connector import IntegrityError

from . import jobqueue
from .db import execute, query

EVENT_TYPES = ("video.ready", "video.failed", "video.deleted", "leak.traced")
TEST_EVENT = "webhook.test"          # sent to one endpoint on request, whatever it subscribed to
STATUS_OF = {"video.ready": "ready", "video.failed": "failed", "video.deleted": "deleting"}   # the row's, at emit
DELIVER = "webhook.deliver"          # job kind; payload {endpoint_id, event_id}; subject = the endpoint
# Deliveries are short network calls: before any video's encoding, so a busy queue does not
# hold a notification back for minutes. Retries back off WORKER_RETRY_BASE_SECONDS * 4^(n-1)
# (30 s … 2 h 8 min with the default): 6 attempts span about 2 h 50 min.
DELIVERY_PRIORITY = 10
DELIVERY_MAX_ATTEMPTS = 6
EVENT_KEEP_DAYS = 30                 # events older than this are pruned (no redelivery after)


def subscribers(conn, event_type: str, owner_id: str) -> list[str]:
    return [r["id"] for r in query(
        conn, "SELECT e.id FROM webhook_endpoints e JOIN users u ON u.id = e.owner_id "
              "WHERE e.enabled = 1 AND FIND_IN_SET(%s, e.events) "
              "AND (e.owner_id = %s OR (e.all_videos = 1 AND u.role = 'admin')) ORDER BY e.created_at",
        (event_type, owner_id))]


def emit(conn, event_type: str, owner_id: str, data: dict, dedupe_key: str | None = None) -> str | None:
    """In the caller's transaction: the event and a delivery job per subscriber; the event id,
    or None when nobody subscribed or the event (``dedupe_key``) was already emitted."""
    endpoints = subscribers(conn, event_type, owner_id)
    if not endpoints:
        return None
    event_id = new_event(conn, event_type, data, dedupe_key)
    if event_id is not None:
        for endpoint_id in endpoints:
            enqueue_delivery(conn, endpoint_id, event_id)
    return event_id


def new_event(conn, event_type: str, data: dict, dedupe_key: str | None = None) -> str | None:
    execute(conn, "DELETE FROM webhook_events WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL %s DAY LIMIT 100",
            (EVENT_KEEP_DAYS,))
    event_id = uuid.uuid4().hex
    try:
        execute(conn, "INSERT INTO webhook_events (id, type, dedupe_key, data) VALUES (%s, %s, %s, %s)",
                (event_id, event_type, dedupe_key, json.dumps(data)))
    except IntegrityError:          # the same event decided again (MariaDB undoes only the statement)
        return None
    return event_id


def enqueue_delivery(conn, endpoint_id: str, event_id: str) -> str:
    return jobqueue.enqueue(conn, DELIVER, {"endpoint_id": endpoint_id, "event_id": event_id}, subject=endpoint_id,
                            priority=DELIVERY_PRIORITY, max_attempts=DELIVERY_MAX_ATTEMPTS)


def video_data(video: dict) -> dict:
    """The ``data`` of a video event from its row (id, owner_id, title, status[, status_message])."""
    return {"video_id": video["id"], "owner_id": video["owner_id"], "title": video["title"],
            "status": video["status"], "status_message": video.get("status_message") or ""}


def emit_video_event(conn, event_type: str, video_id: str) -> str | None:
    """A video event from the video's row as it is in the caller's transaction (a deleted
    video's before its row goes); at most once per video and type."""
    video = query(conn, "SELECT id, owner_id, title, status, status_message FROM videos WHERE id = %s",
                  (video_id,), one=True)
    if video is None or video["status"] != STATUS_OF[event_type]:
        return None                 # (a delete began meanwhile: the row did not change as the event says)
    data = video_data(video)
    if event_type == "video.deleted":
        data.update(status="deleted", status_message="")
    return emit(conn, event_type, video["owner_id"], data, dedupe_key=f"{event_type}:{video_id}")


def allow_again(conn, event_type: str, video_id: str) -> None:
    """The video's event of this type may be emitted again (an administrator retried a failed
    video: a second failure is news)."""
    execute(conn, "UPDATE webhook_events SET dedupe_key = NULL WHERE dedupe_key = %s", (f"{event_type}:{video_id}",))
