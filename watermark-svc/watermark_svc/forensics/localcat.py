"""A catalogue over local files: for tests, benchmarks and offline re-analysis."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .detector import WatermarkGeometry, geometry_for_source
from .index import IndexHits, MemoryIndex
from .readout import Source
from .reference import build_proxy
from .signatures import catalogue_signatures
from .timing import fingerprint


class LocalCatalogue:
    """videos: {video_id: source path}; sessions: {session_id: video_id}; schemes: {video_id:
    codeword scheme} where processing gave one other than uniform (its metadata's "codeword").

    With proxy_dir the detector reads analysis proxies built there on first use, as
    the service does (dbcatalogue.py); without, it reads the originals directly."""

    def __init__(self, videos: dict[str, str], sessions: dict[str, str] | None = None,
                 proxy_dir: Path | None = None, schemes: dict[str, str] | None = None):
        self.videos = dict(videos)
        self.schemes = dict(schemes or {})
        self.sessions = dict(sessions or {})
        self.proxy_dir = Path(proxy_dir) if proxy_dir else None
        self._geometry: dict[str, WatermarkGeometry] = {}
        self._fp: dict[str, np.ndarray] = {}
        self._proxies: dict[str, str] = {}
        self._index = MemoryIndex()
        self._indexed: set[str] = set()

    def candidates(self) -> list[str]:
        return list(self.videos)

    def geometry(self, video_id: str) -> WatermarkGeometry:
        if video_id not in self._geometry:
            g = geometry_for_source(self.videos[video_id])
            self._geometry[video_id] = replace(g, codeword_scheme=self.schemes.get(video_id, g.codeword_scheme))
        return self._geometry[video_id]

    def source(self, video_id: str) -> Source:
        """The source as the detector reads it: an original with its colour conversion and
        its decoder (the geometry's, as processing read it), a proxy as it is."""
        g = self.geometry(video_id)
        original = self.proxy_dir is None       # a proxy: converted already, H.264
        return Source(self.source_path(video_id), self.fingerprint(video_id), g.source_color if original else "",
                      g.source_decoder if original else "")

    def source_path(self, video_id: str) -> str:
        if self.proxy_dir is None:
            return self.videos[video_id]
        if video_id not in self._proxies:
            dest = self.proxy_dir / f"proxy-{video_id}.mp4"
            build_proxy(self.videos[video_id], self.geometry(video_id), dest)
            self._proxies[video_id] = str(dest)
        return self._proxies[video_id]

    def fingerprint(self, video_id: str) -> np.ndarray:
        if video_id not in self._fp:
            g, path = self.geometry(video_id), self.source_path(video_id)
            if self.proxy_dir is None:          # the original, read as processing read it
                fp = fingerprint(path, g.fps, color=g.source_color, video_decoder=g.source_decoder,
                                 viewed=(g.pattern_width, g.pattern_height))
            else:
                fp = fingerprint(path, g.fps)
            self._fp[video_id] = fp
        return self._fp[video_id]

    def ensure_indexed(self) -> int:
        """Index every video not indexed yet (all of them on first use); how many."""
        todo = [v for v in self.videos if v not in self._indexed]
        for vid in todo:
            self._index.add(vid, catalogue_signatures(self.fingerprint(vid), self.geometry(vid).fps))
            self._indexed.add(vid)
        return len(todo)

    def index_lookup(self, keys: np.ndarray) -> IndexHits:
        return self._index.lookup(keys)

    def session_ids(self, video_id: str) -> list[str]:
        return sorted(s for s, v in self.sessions.items() if v == video_id)

    def session_video(self, session_id: str) -> str | None:
        return self.sessions.get(session_id)
