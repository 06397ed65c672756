"""Probe a source with the one shared probe (svcommon.mediaprobe: allow-listed container,
limits, published duration and display size, start and end decodable); its refusals
become InvalidMedia here, so the worker's verdict is the upload's verdict. A source to
publish gets the verdict upload-svc gives (``probe_to_publish``)."""
from __future__ import annotations

import os
from typing import Callable

from svcommon import mediaprobe
from svcommon.mediaprobe import MediaLimits, MediaRejected, ProbeResult

from .errors import InvalidMedia

__all__ = ["ProbeResult", "MediaLimits", "probe", "probe_to_publish"]


def probe(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    """Return the facts we need about `path`, or raise InvalidMedia saying why not (a
    forensic suspect, or a published video's original read again)."""
    return _judged(mediaprobe.probe, path, limits)


def probe_to_publish(path: str | os.PathLike, limits: MediaLimits | None = None) -> ProbeResult:
    """``probe``, and the rules only a video to publish must meet."""
    return _judged(mediaprobe.probe_to_publish, path, limits)


def _judged(verdict: Callable[..., ProbeResult], path: str | os.PathLike, limits: MediaLimits | None) -> ProbeResult:
    try:
        return verdict(path, limits)
    except MediaRejected as exc:
        raise InvalidMedia(exc.reason) from None
