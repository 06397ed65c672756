"""Input rules for accounts; each failure is a clear 400 with the field named."""
from __future__ import annotations

import re

from svcommon.errors import APIError

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
ROLES = ("admin", "uploader", "viewer")


def field(data: dict, name: str, max_len: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise APIError(400, "invalid_input", f"'{name}' is required")
    if len(value) > max_len:
        raise APIError(400, "invalid_input", f"'{name}' is too long (max {max_len} characters)")
    return value


def username(data: dict) -> str:
    value = field(data, "username", 64)
    if not USERNAME_RE.match(value):
        raise APIError(400, "invalid_input", "username must be 3-32 letters, digits, '.', '_' or '-'")
    return value


def email(data: dict) -> str:
    value = field(data, "email", 254).strip()
    if not EMAIL_RE.match(value):
        raise APIError(400, "invalid_input", "email address is not valid")
    return value.lower()


def new_password(data: dict) -> str:
    value = field(data, "password", 256)
    if len(value) < 10:
        raise APIError(400, "invalid_input", "password must be at least 10 characters")
    return value
