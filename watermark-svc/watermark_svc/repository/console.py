"""The security console: playback sessions and security events, filtered (user, time range,
event kind, session state) and paged newest first, each page with its total."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from svcommon.db import query

from .forensics import SESSION_DETAIL


@dataclass(frozen=True)
class ConsoleFilter:
    user_id: str | None = None        # sessions of / events about or by this account
    since: datetime | None = None     # started (sessions) / recorded (events) at or after
    until: datetime | None = None     # ... and before
    kind: str | None = None           # events only
    state: str | None = None          # sessions only: 'active', 'ended' (ended or expired)


def user_by_name_or_id(conn, text: str) -> dict | None:
    return query(conn, "SELECT id, username FROM users WHERE username = %s OR id = %s LIMIT 1", (text, text),
                 one=True)


def _where(*conditions: tuple[bool, str, tuple]) -> tuple[str, tuple]:
    """``WHERE a AND b `` and its parameters from the (applies, clause, parameters) that apply."""
    used = [(clause, params) for applies, clause, params in conditions if applies]
    if not used:
        return "", ()
    return "WHERE " + " AND ".join(c for c, _ in used) + " ", tuple(v for _, params in used for v in params)


def _session_where(f: ConsoleFilter, now: datetime) -> tuple[str, tuple]:
    return _where((bool(f.user_id), "s.user_id = %s", (f.user_id,)),
                  (f.since is not None, "s.started_at >= %s", (f.since,)),
                  (f.until is not None, "s.started_at < %s", (f.until,)),
                  (f.state == "active", "s.ended_at IS NULL AND s.expires_at > %s", (now,)),
                  (f.state == "ended", "(s.ended_at IS NOT NULL OR s.expires_at <= %s)", (now,)))


def session_page(conn, f: ConsoleFilter, limit: int, offset: int, now: datetime) -> tuple[list[dict], int]:
    where, params = _session_where(f, now)
    total = query(conn, f"SELECT COUNT(*) AS n FROM playback_sessions s {where}", params, one=True)["n"]
    rows = query(conn, SESSION_DETAIL + where + "ORDER BY s.started_at DESC, s.id DESC LIMIT %s OFFSET %s",
                 (*params, limit, offset))
    return rows, total


EVENT_COLS = ("e.id, e.created_at, e.kind, e.service, e.user_id, u.username, u.disabled AS user_disabled, "
              "e.actor_id, a.username AS actor_username, e.ip, e.path, e.detail")
EVENT_FROM = ("FROM security_events e LEFT JOIN users u ON u.id = e.user_id "
              "LEFT JOIN users a ON a.id = e.actor_id ")


def _event_where(f: ConsoleFilter) -> tuple[str, tuple]:
    return _where((bool(f.kind), "e.kind = %s", (f.kind,)),
                  (bool(f.user_id), "(e.user_id = %s OR e.actor_id = %s)", (f.user_id, f.user_id)),
                  (f.since is not None, "e.created_at >= %s", (f.since,)),
                  (f.until is not None, "e.created_at < %s", (f.until,)))


def event_page(conn, f: ConsoleFilter, limit: int, offset: int) -> tuple[list[dict], int]:
    where, params = _event_where(f)
    total = query(conn, f"SELECT COUNT(*) AS n FROM security_events e {where}", params, one=True)["n"]
    rows = query(conn, f"SELECT {EVENT_COLS} {EVENT_FROM} {where}ORDER BY e.created_at DESC, e.id DESC "
                       "LIMIT %s OFFSET %s", (*params, limit, offset))
    return rows, total


def event_kinds(conn) -> list[str]:
    """The kinds recorded so far (a loose scan of ix_events_kind), for the console's filter."""
    return [r["kind"] for r in query(conn, "SELECT DISTINCT kind FROM security_events ORDER BY kind")]
