"""Probe a source with the one shared probe (svcommon.mediaprobe: allow-listed container,
limits, published duration and display size, start and end decodable); its refusals
become InvalidMedia here, so the worker's verdict is the upload's verdict. A source to
publish also meets ``check_publishable`` (``probe_to_publish``), as upload-svc checks it."""
from __future__ import annotations

import os

from svcommon.mediaprobe import MediaLimits, MediaRejected, ProbeResult, check_publishable
from svcommon.mediaprobe import probe as _probe

from .errors import InvalidMedia

__all__ = ["ProbeResult", "MediaLimits", "probe", "probe_to_publish"]


def probe(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    """Return the facts we need about `path`, or raise InvalidMedia saying why not."""
    try:
        return _probe(path, limits)
    except MediaRejected as exc:
        raise InvalidMedia(exc.reason) from None


def probe_to_publish(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    """``probe``, and the rules only a video to publish must meet (a forensic suspect or a
    published video's original, read again, is probed without them)."""
    info = probe(path, limits)
    try:
        check_publishable(info, limits)
    except MediaRejected as exc:
        raise InvalidMedia(exc.reason) from None
    return info
