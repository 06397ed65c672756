"""Upload quotas, once: the server-wide default (``UPLOAD_QUOTA_BYTES``), a user's own quota
(``users.upload_quota_bytes``, NULL = the default), what is in force for a user, and byte
sizes written and read the way people write them ("50 GiB", "750 MB").

upload-svc enforces the quota; auth-svc's admin pages and API set and show it."""
from __future__ import annotations

import re

from .config import Setting

KiB, MiB, GiB, TiB = 1024, 1024 ** 2, 1024 ** 3, 1024 ** 4
MAX_QUOTA = 1 << 60        # an exabyte: far beyond any disk, well inside BIGINT

QUOTA_SETTINGS = [
    Setting("UPLOAD_QUOTA_BYTES", 50 * GiB, int,
            "default stored bytes per user when an admin set none (0 = unlimited; admins unlimited)"),
]

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": KiB, "m": 1000 ** 2, "mb": 1000 ** 2, "mib": MiB,
          "g": 1000 ** 3, "gb": 1000 ** 3, "gib": GiB, "t": 1000 ** 4, "tb": 1000 ** 4, "tib": TiB}
_SIZE = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,6})?)\s*([a-zA-Z]{0,3})")


def validate(cfg: dict) -> None:
    from .config import ConfigError
    if not 0 <= int(cfg["UPLOAD_QUOTA_BYTES"]) <= MAX_QUOTA:
        raise ConfigError("configuration error: UPLOAD_QUOTA_BYTES must be 0 (unlimited) or a positive byte count")


def in_force(own: int | None, default: int, role: str) -> int | None:
    """The quota that applies to a user in bytes; None = unlimited (admins, or 0)."""
    if role == "admin":
        return None
    quota = default if own is None else own
    return quota if quota > 0 else None


def format_bytes(n: int | float | None) -> str:
    """'1.5 GiB', '300 KiB', '12 B' (binary units, as the upload page shows them)."""
    if n is None:
        return "unlimited"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}".replace(".0 ", " ")


def exact_text(n: int) -> str:
    """``n`` as a form field shows it: '20 GiB' when that is exact, else the byte count."""
    text = format_bytes(n)
    try:
        return text if n and parse_bytes(text) == n else str(n)
    except ValueError:
        return str(n)


def parse_bytes(text: str) -> int:
    """A size as a person types it: '1073741824', '1 GiB', '1.5 GB', '750mb' (kB/MB/GB/TB are
    powers of 1000, KiB/MiB/GiB/TiB of 1024). ValueError with a message for anything else."""
    m = _SIZE.fullmatch((text or "").strip())
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ValueError("write a size such as 500 MiB, 20 GiB or 1.5 TB (0 = unlimited)")
    number = float(m.group(1))
    if unit in ("", "b") and "." in m.group(1):
        raise ValueError("a byte count is a whole number")
    size = int(round(number * _UNITS[unit]))
    if size > MAX_QUOTA:
        raise ValueError("that is larger than any quota can be")
    return size
