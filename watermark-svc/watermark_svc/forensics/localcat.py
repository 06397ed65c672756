"""A catalogue over local files: for tests, benchmarks and offline re-analysis."""
from __future__ import annotations

import numpy as np

from .detector import WatermarkGeometry, geometry_for_source
from .timing import fingerprint


class LocalCatalogue:
    """videos: {video_id: source path}; sessions: {session_id: video_id}."""

    def __init__(self, videos: dict[str, str], sessions: dict[str, str] | None = None):
        self.videos = dict(videos)
        self.sessions = dict(sessions or {})
        self._geometry: dict[str, WatermarkGeometry] = {}
        self._fp: dict[str, np.ndarray] = {}

    def candidates(self) -> list[str]:
        return list(self.videos)

    def geometry(self, video_id: str) -> WatermarkGeometry:
        if video_id not in self._geometry:
            self._geometry[video_id] = geometry_for_source(self.videos[video_id])
        return self._geometry[video_id]

    def source_path(self, video_id: str) -> str:
        return self.videos[video_id]

    def fingerprint(self, video_id: str) -> np.ndarray:
        if video_id not in self._fp:
            self._fp[video_id] = fingerprint(self.videos[video_id], self.geometry(video_id).fps)
        return self._fp[video_id]

    def session_ids(self, video_id: str) -> list[str]:
        return sorted(s for s, v in self.sessions.items() if v == video_id)

    def session_video(self, session_id: str) -> str | None:
        return self.sessions.get(session_id)
