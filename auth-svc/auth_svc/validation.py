"""Input rules for accounts. Forms are checked whole: every invalid field is reported at once
in one 400 (``fields`` in the JSON error, a list on the pages)."""
from __future__ import annotations

import re

from svcommon.errors import APIError

from . import password_policy

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


def invalid(errors: dict[str, list[str]]) -> APIError:
    messages = [m for ms in errors.values() for m in ms]
    return APIError(400, "invalid_input", " ".join(messages), fields=errors)


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _username_errors(value: str) -> list[str]:
    if not value:
        return ["Username is required."]
    return [] if USERNAME_RE.match(value) else ["Username must be 3-32 letters, digits, '.', '_' or '-'."]


def _email_errors(value: str) -> list[str]:
    if not value:
        return ["Email address is required."]
    return [] if len(value) <= 254 and EMAIL_RE.match(value) else ["Email address is not valid."]


def password_errors(password: str, username: str = "", email: str = "", name: str = "password") -> dict:
    if not password:
        return {name: ["Password is required."]}
    verdict = password_policy.check(password, username, email)
    return {name: verdict.errors} if verdict.errors else {}


def signup(data: dict) -> tuple[str, str, str]:
    """(username, email, password) of a valid sign-up, or every problem with it at once."""
    username, email, password = _text(data, "username"), _text(data, "email").strip().lower(), _text(data, "password")
    errors = {k: v for k, v in (("username", _username_errors(username)), ("email", _email_errors(email))) if v}
    errors.update(password_errors(password, username, email))
    if errors:
        raise invalid(errors)
    return username, email, password
