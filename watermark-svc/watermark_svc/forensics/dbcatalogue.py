"""The catalogue as the service sees it: MariaDB for videos and sessions, file-svc for
the detector's references.

A video's original is decoded once into an analysis proxy (reference.py) and a
fingerprint (144 float32 block means a frame: ~62 MB per hour at 30 fps): by the worker right after processing, or by
the first detection that finds them missing. Both are stored next to the video's derived
media (media/{video_id}/forensics/), so they are deleted with the video. Later
detections match the whole catalogue without decoding any original, and read the proxy
instead of a mezzanine file many times its size.
"""
from __future__ import annotations

import io
import json
import logging
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
from cachetools import LRUCache

from svcommon.codeword import scheme_of
from svcommon.filestore import FileStore, FileStoreError, NotFound, media_prefix

from .. import repository as repo
from ..media.errors import VideoGone
from . import indexdb
from .detector import WatermarkGeometry
from .index import IndexHits
from .readout import Source
from .reference import build_proxy
from .signatures import catalogue_signatures
from .timing import fingerprint

log = logging.getLogger("watermark.forensics")
# Per worker process (fingerprints never change), bounded by bytes, not entries: a long
# video's fingerprint is large (576 bytes a frame). 128 MiB: ~2 hours of 30 fps video;
# least recently used go first, one larger than the whole bound is not kept.
FP_MEMO_BYTES = 128 * 1024 * 1024
_FP_MEMO: LRUCache = LRUCache(maxsize=FP_MEMO_BYTES, getsizeof=lambda fp: fp.nbytes)
_FP_LOCK = threading.Lock()


def fingerprint_key(video_id: str) -> str:
    return f"{media_prefix(video_id)}forensics/fingerprint.npy"


def proxy_key(video_id: str) -> str:
    return f"{media_prefix(video_id)}forensics/proxy.mp4"


def _cache(fs: FileStore, key: str, body, length: int, video_id: str) -> None:
    try:
        fs.put_stream(key, body, length=length, content_type="application/octet-stream")
    except FileStoreError as exc:             # a cache: losing it costs time, not results
        log.warning("could not cache a forensic reference", extra={"video_id": video_id, "key": key,
                                                                     "error": str(exc)})


def _cache_fingerprint(fs: FileStore, video_id: str, fp: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, fp.astype(np.float32), allow_pickle=False)
    _cache(fs, fingerprint_key(video_id), buf.getvalue(), buf.tell(), video_id)
    _remember(video_id, fp)


def _remember(video_id: str, fp: np.ndarray) -> None:
    with _FP_LOCK:
        _FP_MEMO.pop(video_id, None)
        if fp.nbytes <= _FP_MEMO.maxsize:
            _FP_MEMO[video_id] = fp


def _recall(video_id: str) -> np.ndarray | None:
    with _FP_LOCK:
        return _FP_MEMO.get(video_id)


def store_reference(fs: FileStore, video_id: str, original: Path, geometry: WatermarkGeometry,
                    work: Path, db=None) -> Path:
    """Build a video's analysis proxy and fingerprint from a local original and cache both
    (the worker does this right after processing, so even the first trace is quick); with
    db, also put the video in the catalogue index."""
    dest = Path(work) / f"proxy-{video_id}.mp4"
    build_proxy(str(original), geometry, dest)
    with open(dest, "rb") as fh:
        _cache(fs, proxy_key(video_id), fh, dest.stat().st_size, video_id)
    fp = fingerprint(str(dest), geometry.fps)
    _cache_fingerprint(fs, video_id, fp)
    if db is not None:
        index_video(db, video_id, fp, geometry)
    return dest


def index_video(db, video_id: str, fp: np.ndarray, geometry: WatermarkGeometry) -> bool:
    """The video's signatures into the catalogue index (indexdb.py). Best effort like the
    caches: a video left out is indexed by the next trace (DbCatalogue.ensure_indexed)."""
    try:
        return indexdb.store(db, video_id, catalogue_signatures(fp, geometry.fps))
    except Exception as exc:                  # noqa: BLE001 - never fails the reference
        log.warning("could not index a video for forensics", extra={"video_id": video_id, "error": str(exc)})
        return False


def discard_if_deleted(db, fs: FileStore, video_id: str) -> bool:
    """After writing objects for a video outside its processing job: if the video was
    deleted meanwhile, remove them (else they would outlive it). upload-svc commits the
    video's 'deleting' mark before it removes the objects: if this read does not see the
    mark, that removal starts after our objects were written and takes them too."""
    with db.standalone() as conn:
        if not repo.video_gone(conn, video_id):
            return False
    fs.delete_prefix(media_prefix(video_id))
    log.info("video deleted while its forensic reference was built; reference removed",
             extra={"video_id": video_id})
    return True


def geometry_from_metadata(meta: dict) -> WatermarkGeometry:
    wm = meta["watermark"]
    return WatermarkGeometry(int(wm["pattern_width"]), int(wm["pattern_height"]),
                             int(wm["frames_per_segment"]), Fraction(meta["fps"]),
                             int(wm.get("ramp_frames", 4)), scheme_of(meta), str(wm.get("source_color", "")),
                             str(wm.get("source_decoder", "")))


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
                raise VideoGone(f"video {video_id} does not exist or is not processed")
            row["meta"] = json.loads(row.pop("metadata"))
            self._videos[video_id] = row
        return self._videos[video_id]

    def title(self, video_id: str) -> str:
        return self._video(video_id)["title"]

    def titles(self, video_ids) -> dict[str, str]:
        """Titles of the videos a result names (None ids and videos deleted since are left out)."""
        out = {}
        for vid in filter(None, video_ids):
            try:
                out[vid] = self.title(vid)
            except VideoGone:
                continue
        return out

    def candidates(self) -> list[str]:
        with self.db.standalone() as conn:
            return [r["id"] for r in repo.catalogue_videos(conn)]

    def geometry(self, video_id: str) -> WatermarkGeometry:
        return geometry_from_metadata(self._video(video_id)["meta"])

    def source(self, video_id: str) -> Source:
        # Always the analysis proxy: its colour converted already, H.264 for ffmpeg's own
        # decoder (reference.proxy_cmd), so it is read as it is.
        return Source(self.source_path(video_id), self.fingerprint(video_id))

    def source_path(self, video_id: str) -> str:
        """The pristine source as the detector reads it: the video's analysis proxy
        (built from the original here if processing could not)."""
        if video_id not in self._paths:
            dest = self.work / f"proxy-{video_id}.mp4"
            try:
                self.fs.download(proxy_key(video_id), dest)
            except NotFound:
                dest = self._build_reference(video_id)
            self._paths[video_id] = str(dest)
        return self._paths[video_id]

    def _build_reference(self, video_id: str) -> Path:
        key = self._video(video_id)["original_key"]
        if not key:
            raise VideoGone(f"the original of video {video_id} is gone")
        original = self.work / f"original-{video_id}"
        try:
            self.fs.download(key, original)
            proxy = store_reference(self.fs, video_id, original, self.geometry(video_id), self.work, self.db)
            if discard_if_deleted(self.db, self.fs, video_id):
                raise VideoGone(f"video {video_id} was deleted during the trace")
            return proxy
        finally:
            original.unlink(missing_ok=True)      # scratch space: the proxy is all we keep

    def fingerprint(self, video_id: str) -> np.ndarray:
        fp = _recall(video_id)
        if fp is not None:
            return fp
        try:
            fp = np.load(io.BytesIO(self.fs.get_bytes(fingerprint_key(video_id))), allow_pickle=False)
            _remember(video_id, fp)
        except NotFound:
            self.source_path(video_id)            # a fresh reference comes with its fingerprint
            fp = _recall(video_id)
            if fp is None:                        # proxy was cached, fingerprint was not
                fp = fingerprint(self.source_path(video_id), self.geometry(video_id).fps)
                _cache_fingerprint(self.fs, video_id, fp)
        return fp

    def ensure_indexed(self) -> int:
        """Index the ready videos the catalogue index lacks (processed before it existed, or
        whose indexing failed); how many were indexed. Their fingerprints are cached, so
        this costs a read and an insert per such video, once."""
        done = 0
        for vid in indexdb.unindexed(self.db):
            try:
                done += index_video(self.db, vid, self.fingerprint(vid), self.geometry(vid))
            except VideoGone:
                continue
        return done

    def index_lookup(self, keys: np.ndarray) -> IndexHits:
        return indexdb.lookup(self.db, keys)

    def session_ids(self, video_id: str) -> list[str]:
        with self.db.standalone() as conn:
            return repo.session_ids_of_video(conn, video_id)

    def session_video(self, session_id: str) -> str | None:
        with self.db.standalone() as conn:
            return repo.session_video_id(conn, session_id)
