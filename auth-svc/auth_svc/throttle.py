"""Login throttling per account and per client address: after too many failures inside the
window the subject is locked for a while (doubling per extra failure, capped); a locked
subject gets 429 + Retry-After, recorded as a security event."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from flask import current_app

from svcommon import events
from svcommon.errors import APIError

from . import repository as repo


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _subjects(username: str, ip: str) -> list[tuple[str, str, int]]:
    cfg = current_app.config
    return [("account", username.lower()[:255], cfg["LOGIN_MAX_FAILURES_ACCOUNT"]),
            ("ip", ip[:255], cfg["LOGIN_MAX_FAILURES_IP"])]


def check(conn, username: str, ip: str) -> None:
    now = _now()
    for scope, subject, _ in _subjects(username, ip):
        row = repo.throttle_row(conn, scope, subject)
        if row and row["locked_until"] and row["locked_until"] > now:
            conn.rollback()
            wait = max(1, math.ceil((row["locked_until"] - now).total_seconds()))
            events.record("login_throttled", f"{scope} locked for {wait}s")
            raise APIError(429, "too_many_attempts",
                           f"too many failed logins; try again in {wait} seconds", {"Retry-After": str(wait)})
    conn.rollback()


def failed(conn, username: str, ip: str) -> None:
    cfg = current_app.config
    now = _now()
    window = timedelta(seconds=cfg["LOGIN_WINDOW_SECONDS"])
    for scope, subject, limit in _subjects(username, ip):
        row = repo.throttle_row(conn, scope, subject)
        if row is None or now - row["window_start"] > window:
            failures, start = 1, now
        else:
            failures, start = row["failures"] + 1, row["window_start"]
        locked = None
        if failures >= limit:
            extra = failures - limit
            locked = now + timedelta(seconds=min(cfg["LOGIN_LOCK_SECONDS"] * (2 ** min(extra, 6)), 24 * 3600))
        repo.upsert_throttle(conn, scope, subject, failures, start, locked)
    conn.commit()


def succeeded(conn, username: str) -> None:
    repo.clear_throttle(conn, "account", username.lower()[:255])
    conn.commit()
