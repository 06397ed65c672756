"""Request data parsed strictly: integers (query args, headers, path parts), times. (JSON bodies:
the request models, svcommon/openapi.py.)

Python's ``int()`` accepts far more than a client should send: Unicode digits
(``int("١٢") == 12``, while ``"²".isdigit()`` is true yet ``int("²")`` raises), surrounding
whitespace, ``_`` separators and numbers of any size (``page=99999999999999999999``
overflows a SQL OFFSET). Every integer that comes from a request goes through here: ASCII
digits only, a bounded length, a range check, and a clear 400 otherwise.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import request

from .errors import APIError

_DIGITS = re.compile(r"[0-9]{1,18}")   # 18 digits always fit a signed 64-bit column


def parse_uint(value: str | None, name: str, *, minimum: int = 0, maximum: int | None = None,
               code: str = "invalid_input") -> int:
    """``value`` as a non-negative integer written in ASCII digits, within [minimum, maximum]."""
    if value is None or not _DIGITS.fullmatch(value):
        raise APIError(400, code, f"{name} must be a non-negative integer in ASCII digits")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise APIError(400, code, f"{name} must be between {minimum}{upper}")
    return number


def arg_int(name: str, default: int, *, minimum: int = 1, maximum: int) -> int:
    """Query argument ``name`` (``default`` when absent or empty)."""
    value = request.args.get(name)
    if value is None or value == "":
        return default
    return parse_uint(value, name, minimum=minimum, maximum=maximum)


_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
                       r"(Z|[+-][0-9]{2}:[0-9]{2})?")


def arg_time(name: str) -> datetime | None:
    """Query argument ``name`` as an ISO 8601 time (``2026-01-31T12:00:00Z``, an offset, or no
    zone meaning UTC) → naive UTC, what the DATETIME columns hold; None when absent or empty."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        if not _ISO_TIME.fullmatch(value):
            raise ValueError(value)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise APIError(400, "invalid_input", f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00Z")
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def header_uint(name: str, *, code: str = "invalid_header") -> int:
    """Required header ``name`` as a non-negative integer."""
    return parse_uint(request.headers.get(name), name, code=code)


def ascii_uint(value: str | None) -> int | None:
    """Lenient form for values that only select among options (e.g. a key epoch): the
    integer, or None when it is not plain ASCII digits."""
    return int(value) if value is not None and _DIGITS.fullmatch(value) else None
