"""Input rules for video metadata; each failure is a clear 400 naming the field."""
from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from svcommon.errors import APIError
from svcommon.text import has_invisible, strip_invisible

VISIBILITIES = ("public", "private", "password")
MAX_TITLE, MAX_DESCRIPTION, MAX_FILENAME = 200, 5000, 255
MAX_CAPTION_LABEL = 100
# A BCP 47 language tag as players and the DASH lang attribute take it: en, pt-BR, zh-Hant-TW.
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}$")


def _text(value, name: str, max_len: int, multiline: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise APIError(400, "invalid_input", f"'{name}' must be a string")
    value = unicodedata.normalize("NFC", value).strip()
    if not multiline:
        value = value.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if has_invisible(value):
        raise APIError(400, "invalid_input", f"'{name}' contains control or invisible formatting characters "
                       "(such as bidi overrides or zero-width characters)")
    if len(value) > max_len:
        raise APIError(400, "invalid_input", f"'{name}' is too long (max {max_len} characters)")
    return value


def title(value, fallback: str = "") -> str:
    t = _text(value, "title", MAX_TITLE)
    return t or fallback or "Untitled video"


def description(value) -> str:
    return _text(value, "description", MAX_DESCRIPTION, multiline=True)


def caption_language(value) -> str:
    if not isinstance(value, str) or len(value) > 35 or not LANGUAGE_TAG.match(value.strip()):
        raise APIError(400, "invalid_input", "'lang' must be a language tag such as en, fr or pt-BR")
    return value.strip()


def caption_label(value, lang: str) -> str:
    """What the player's captions menu shows; the language tag when none is given."""
    return _text(value, "label", MAX_CAPTION_LABEL) or lang


def visibility(value, default: str = "private") -> str:
    if value in (None, ""):
        return default
    if value not in VISIBILITIES:
        raise APIError(400, "invalid_input", "'visibility' must be one of public, private, password")
    return value


def password(value, required: bool) -> str | None:
    if value in (None, ""):
        if required:
            raise APIError(400, "invalid_input", "a 'password' is required for password-protected videos")
        return None
    if not isinstance(value, str) or not 4 <= len(value) <= 256:
        raise APIError(400, "invalid_input", "'password' must be 4-256 characters")
    return value


def display_filename(value) -> str:
    """The user's file name, for display and as the download name only (never a key)."""
    if not isinstance(value, str):
        return ""
    value = unicodedata.normalize("NFC", value).replace("\\", "/").split("/")[-1]
    value = strip_invisible(value).replace("\r", "").replace("\n", "").replace("\t", " ").strip()
    return value[:MAX_FILENAME]


def title_from_filename(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem[:MAX_TITLE]


def tus_metadata(header: str | None) -> dict[str, str]:
    """Upload-Metadata: 'key base64value,key2 base64value2' (values UTF-8)."""
    out: dict[str, str] = {}
    if not header:
        return out
    if len(header) > 16384:
        raise APIError(400, "invalid_metadata", "Upload-Metadata is too long")
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, val = item.partition(" ")
        if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", key) or key in out:
            raise APIError(400, "invalid_metadata", "Upload-Metadata keys must be unique ASCII words")
        try:
            out[key] = base64.b64decode(val.strip(), validate=True).decode("utf-8") if val.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise APIError(400, "invalid_metadata", f"Upload-Metadata value of '{key}' is not base64 UTF-8")
    return out
