"""Time as the services store and show it. The database holds naive UTC datetimes
(connections run at +00:00), the APIs show ISO 8601 UTC with a ``Z``."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone


def utcnow_naive() -> datetime:
    """Now in UTC without tzinfo, comparable with the DATETIME columns we read back."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(dt: datetime | int | None, millis: bool = False) -> str | None:
    """``2026-01-31T12:00:00Z`` (or ``…:00.123Z``) for a UTC datetime, naive or aware, or
    for epoch seconds (a JWT's ``exp``); None stays None (a time that has not happened yet)."""
    if dt is None:
        return None
    if isinstance(dt, (int, float)):
        dt = datetime.fromtimestamp(dt, timezone.utc)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def in_window(start: datetime, now: datetime, seconds: int) -> bool:
    """Whether a fixed counting window that opened at ``start`` is still open at ``now``."""
    return now - start <= timedelta(seconds=seconds)


def count_in_window(failures: int, start: datetime | None, now: datetime, seconds: int) -> tuple[int, datetime]:
    """One more failure in a fixed window: ``(failures, window start)`` after counting it;
    a first failure, or one after the window closed, opens a new window at ``now``."""
    if not failures or start is None or not in_window(start, now, seconds):
        return 1, now
    return failures + 1, start


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds to wait (at least 1), e.g. for ``Retry-After``."""
    return max(1, math.ceil((moment - now).total_seconds()))
