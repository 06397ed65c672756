"""tus's Upload-Metadata header, parsed (tus.py's creation checks the values as a new video's)."""
from __future__ import annotations

import base64
import binascii
import re

from svcommon.errors import APIError


def upload_metadata(header: str | None) -> dict[str, str]:
    """Upload-Metadata: 'key base64value,key2 base64value2' (values UTF-8); the values are
    checked as a new video's (S.NewVideo)."""
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
