"""Webhook endpoints, their events and the last attempts of their deliveries (webhooks_api.py,
webhook_delivery.py). Events are written and delivery jobs enqueued by svcommon.webhooks.emit."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from svcommon.db import execute, lock_for_count, query

ATTEMPTS_KEPT = 20                  # per endpoint; older attempts are pruned as new ones come
ENDPOINT_COLS = ("e.id, e.owner_id, u.username AS owner, e.url, e.description, e.events, e.all_videos, "
                 "e.secret_enc, e.enabled, e.dead_streak, e.disabled_reason, e.created_at")


@dataclass(frozen=True)
class Endpoint:
    id: str
    owner_id: str
    owner: str
    url: str
    description: str
    events: tuple[str, ...]
    all_videos: bool
    secret_enc: bytes
    enabled: bool
    dead_streak: int
    disabled_reason: str
    created_at: datetime


def _endpoint(row: dict) -> Endpoint:
    events = row["events"]
    events = tuple(sorted(events if isinstance(events, set) else (e for e in (events or "").split(",") if e)))
    return Endpoint(row["id"], row["owner_id"], row["owner"], row["url"], row["description"], events,
                    bool(row["all_videos"]), bytes(row["secret_enc"]), bool(row["enabled"]),
                    int(row["dead_streak"]), row["disabled_reason"], row["created_at"])


def lock_owner(conn, owner_id: str) -> None:
    """The owner's user row, locked until commit: one endpoint registration of a user at a
    time, so the count after it sees every endpoint made (svcommon.db.lock_for_count)."""
    lock_for_count(conn, "SELECT id FROM users WHERE id = %s FOR UPDATE", (owner_id,))


def count_endpoints(conn, owner_id: str) -> int:
    return query(conn, "SELECT COUNT(*) AS n FROM webhook_endpoints WHERE owner_id = %s", (owner_id,), one=True)["n"]


def insert_endpoint(conn, endpoint_id: str, owner_id: str, url: str, description: str, events: list[str],
                    all_videos: bool, secret_enc: bytes) -> None:
    execute(conn, "INSERT INTO webhook_endpoints (id, owner_id, url, description, events, all_videos, secret_enc) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (endpoint_id, owner_id, url, description, ",".join(events), int(all_videos), secret_enc))


def endpoints(conn, owner_id: str | None) -> list[Endpoint]:
    """An owner's endpoints, or everybody's (None: an administrator's view), newest first."""
    where, params = ("WHERE e.owner_id = %s", (owner_id,)) if owner_id else ("", ())
    return [_endpoint(r) for r in query(conn, f"SELECT {ENDPOINT_COLS} FROM webhook_endpoints e "
                                              f"JOIN users u ON u.id = e.owner_id {where} "
                                              "ORDER BY e.created_at DESC, e.id", params)]


def endpoint(conn, endpoint_id: str, for_update: bool = False) -> Endpoint | None:
    row = query(conn, f"SELECT {ENDPOINT_COLS} FROM webhook_endpoints e JOIN users u ON u.id = e.owner_id "
                      "WHERE e.id = %s" + (" FOR UPDATE" if for_update else ""), (endpoint_id,), one=True)
    return _endpoint(row) if row else None


def update_endpoint(conn, endpoint_id: str, *, description: str | None = None, events: list[str] | None = None,
                    enabled: bool | None = None) -> None:
    sets, params = [], []
    if description is not None:
        sets.append("description = %s"), params.append(description)
    if events is not None:
        sets.append("events = %s"), params.append(",".join(events))
    if enabled is not None:
        # Enabling again starts a fresh count of deliveries given up.
        sets.append("enabled = %s, dead_streak = 0, disabled_reason = ''" if enabled else "enabled = %s")
        params.append(int(enabled))
    if sets:
        execute(conn, f"UPDATE webhook_endpoints SET {', '.join(sets)}, updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
                (*params, endpoint_id))


def set_endpoint_secret(conn, endpoint_id: str, secret_enc: bytes) -> None:
    execute(conn, "UPDATE webhook_endpoints SET secret_enc = %s, updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
            (secret_enc, endpoint_id))


def delete_endpoint(conn, endpoint_id: str) -> int:
    # attempts go with it (ON DELETE CASCADE); its delivery jobs are the caller's (jobqueue.forget)
    return execute(conn, "DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,))


def webhook_event(conn, event_id: str) -> dict | None:
    row = query(conn, "SELECT id, type, data, created_at FROM webhook_events WHERE id = %s", (event_id,), one=True)
    if row is not None:
        row["data"] = json.loads(row["data"])
    return row


def attempts(conn, endpoint_id: str, limit: int = ATTEMPTS_KEPT) -> list[dict]:
    return query(conn, "SELECT id, event_id, event_type, attempt, outcome, status_code, latency_ms, error, created_at "
                       "FROM webhook_attempts WHERE endpoint_id = %s ORDER BY id DESC LIMIT %s", (endpoint_id, limit))


def attempt(conn, endpoint_id: str, attempt_id: int) -> dict | None:
    return query(conn, "SELECT id, event_id, event_type FROM webhook_attempts WHERE endpoint_id = %s AND id = %s",
                 (endpoint_id, attempt_id), one=True)


def record_attempt(conn, endpoint_id: str, event: dict, attempt_no: int, outcome: str, status_code: int | None,
                   latency_ms: int | None, error: str) -> None:
    """One attempt, and only the newest ATTEMPTS_KEPT of the endpoint kept."""
    execute(conn, "INSERT INTO webhook_attempts (endpoint_id, event_id, event_type, attempt, outcome, status_code, "
                  "latency_ms, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (endpoint_id, event["id"], event["type"], attempt_no, outcome, status_code, latency_ms, error[:300]))
    execute(conn, "DELETE FROM webhook_attempts WHERE endpoint_id = %s AND id <= (SELECT id FROM "
                  "(SELECT id FROM webhook_attempts WHERE endpoint_id = %s ORDER BY id DESC LIMIT 1 OFFSET %s) AS t)",
            (endpoint_id, endpoint_id, ATTEMPTS_KEPT))
    if outcome == "delivered":
        execute(conn, "UPDATE webhook_endpoints SET dead_streak = 0 WHERE id = %s AND dead_streak <> 0", (endpoint_id,))


def delivery_given_up(conn, endpoint_id: str, disable_after: int, reason: str) -> bool:
    """Count a delivery given up; the endpoint is disabled at ``disable_after`` in a row (True then)."""
    execute(conn, "UPDATE webhook_endpoints SET dead_streak = dead_streak + 1 WHERE id = %s", (endpoint_id,))
    return execute(conn, "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = %s, updated_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND enabled = 1 AND dead_streak >= %s",
                   (reason[:300], endpoint_id, disable_after)) == 1
