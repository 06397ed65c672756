"""The catalogue as the service sees it: MariaDB for videos and sessions, file-svc for
the detector's references.

The first detection that needs a video decodes its original once into an analysis
proxy (reference.py) and a fingerprint (a few MB per hour of video), both stored next
to the video's derived media (media/{video_id}/forensics/), so they are deleted with
the video. Later detections match the whole catalogue without decoding any original,
and read the proxy instead of a mezzanine file many times its size.
"""
from __future__ import annotations

import io
import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from svcommon.filestore import FileStore, FileStoreError, NotFound, media_prefix

from .. import repository as repo
from ..media.errors import InvalidMedia
from .detector import WatermarkGeometry
from .reference import build_proxy
from .timing import fingerprint

log = logging.getLogger("watermark.forensics")
CHUNK = 1024 * 1024
_FP_MEMO: dict[str, np.ndarray] = {}          # per worker process; fingerprints never change
_FP_MEMO_MAX = 64


def fingerprint_key(video_id: str) -> str:
    return f"{media_prefix(video_id)}forensics/fingerprint.npy"


def proxy_key(video_id: str) -> str:
    return f"{media_prefix(video_id)}forensics/proxy.mp4"


def geometry_from_metadata(meta: dict) -> WatermarkGeometry:
    wm = meta["watermark"]
    return WatermarkGeometry(int(wm["pattern_width"]), int(wm["pattern_height"]),
                             int(wm["frames_per_segment"]), Fraction(meta["fps"]),
                             int(wm.get("ramp_frames", 4)))


class DbCatalogue:
    def __init__(self, db, fs: FileStore, work_dir: Path):
        self.db, self.fs, self.work = db, fs, Path(work_dir)
        self._videos: dict[str, dict] = {}
        self._paths: dict[str, str] = {}

    def _video(self, video_id: str) -> dict:
        if video_id not in self._videos:
            with self.db.standalone() as conn:
                row = repo.video_for_forensics(conn, video_id)
            if row is None:
                raise InvalidMedia(f"video {video_id} does not exist or is not processed")
            row["meta"] = json.loads(row.pop("metadata"))
            self._videos[video_id] = row
        return self._videos[video_id]

    def title(self, video_id: str) -> str:
        return self._video(video_id)["title"]

    def candidates(self) -> list[str]:
        with self.db.standalone() as conn:
            return [r["id"] for r in repo.catalogue_videos(conn)]

    def geometry(self, video_id: str) -> WatermarkGeometry:
        return geometry_from_metadata(self._video(video_id)["meta"])

    def source_path(self, video_id: str) -> str:
        """The pristine source as the detector reads it: the video's analysis proxy."""
        if video_id not in self._paths:
            dest = self.work / f"proxy-{video_id}.mp4"
            try:
                self._download(proxy_key(video_id), dest)
            except NotFound:
                self._build_proxy(video_id, dest)
            self._paths[video_id] = str(dest)
        return self._paths[video_id]

    def _download(self, key: str, dest: Path) -> None:
        with self.fs.get(key) as resp, open(dest, "wb") as out:
            for chunk in resp.iter_content(CHUNK):
                out.write(chunk)

    def _build_proxy(self, video_id: str, dest: Path) -> None:
        key = self._video(video_id)["original_key"]
        if not key:
            raise InvalidMedia(f"the original of video {video_id} is gone")
        original = self.work / f"original-{video_id}"
        try:
            self._download(key, original)
            build_proxy(str(original), self.geometry(video_id), dest)
        finally:
            original.unlink(missing_ok=True)      # scratch space: the proxy is all we keep
        try:
            with open(dest, "rb") as fh:
                self.fs.put_stream(proxy_key(video_id), fh, length=dest.stat().st_size, content_type="video/mp4")
        except FileStoreError as exc:             # a cache: losing it costs time, not results
            log.warning("could not cache the analysis proxy", extra={"video_id": video_id, "error": str(exc)})

    def fingerprint(self, video_id: str) -> np.ndarray:
        fp = _FP_MEMO.get(video_id)
        if fp is not None:
            return fp
        key = fingerprint_key(video_id)
        try:
            fp = np.load(io.BytesIO(self.fs.get_bytes(key)), allow_pickle=False)
        except NotFound:
            fp = fingerprint(self.source_path(video_id), self.geometry(video_id).fps)
            buf = io.BytesIO()
            np.save(buf, fp.astype(np.float32), allow_pickle=False)
            try:
                self.fs.put_stream(key, buf.getvalue(), length=buf.tell(), content_type="application/octet-stream")
            except FileStoreError as put_exc:      # a cache: losing it costs time, not results
                log.warning("could not cache fingerprint", extra={"video_id": video_id, "error": str(put_exc)})
        if len(_FP_MEMO) >= _FP_MEMO_MAX:
            _FP_MEMO.pop(next(iter(_FP_MEMO)))
        _FP_MEMO[video_id] = fp
        return fp

    def session_ids(self, video_id: str) -> list[str]:
        with self.db.standalone() as conn:
            return repo.session_ids_of_video(conn, video_id)

    def session_video(self, session_id: str) -> str | None:
        with self.db.standalone() as conn:
            return repo.session_video_id(conn, session_id)
