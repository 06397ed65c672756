"""Probe a source with the one shared probe (svcommon.mediaprobe: allow-listed container,
limits, published duration and display size, start and end decodable); its refusals
become InvalidMedia here, so the worker's verdict is the upload's verdict."""
from __future__ import annotations

import os

from svcommon.mediaprobe import MediaLimits, MediaRejected, ProbeResult
from svcommon.mediaprobe import probe as _probe

from .errors import InvalidMedia

__all__ = ["ProbeResult", "MediaLimits", "probe"]


def probe(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    """Return the facts we need about `path`, or raise InvalidMedia saying why not."""
    try:
        return _probe(path, limits)
    except MediaRejected as exc:
        raise InvalidMedia(exc.reason) from None
