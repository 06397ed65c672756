"""Exceptions raised by the media pipeline.

Two kinds matter to callers: the upload was not a usable video (tell the uploader
why, do not retry) versus our processing failed (log it, maybe retry the job).
"""
from __future__ import annotations


class MediaError(Exception):
    """Base class for everything raised by watermark_svc.media."""


class InvalidMedia(MediaError):
    """The input is not a decodable video; `reason` is safe to show to the uploader."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class VideoGone(InvalidMedia):
    """A catalogue video was deleted (or lost its original) while we worked on it."""


class ProcessingError(MediaError):
    """An ffmpeg step failed on an input we had accepted (a bug, a resource problem)."""

    def __init__(self, step: str, message: str, stderr_tail: str = ""):
        text = f"{step}: {message}"
        if stderr_tail:
            text += f"\n--- ffmpeg stderr (tail) ---\n{stderr_tail}"
        super().__init__(text)
        self.step = step
        self.stderr_tail = stderr_tail


class LimitExceeded(ProcessingError):
    """A child (or the whole job) exceeded its CPU, memory, file-size or time bound. The
    same input would again: the job fails with this reason and is never retried."""
