"""A tus 1.0 client (core + creation + termination, what upload-svc speaks: docs/api.md)
over requests, resumable across runs.

Why not tuspy: it imports aiohttp at module level (aiohttp, tinydb and their seven
dependencies, several compiled, for a synchronous CLI), sends without timeouts and opens a
connection per chunk; the part of tus we need is a few requests.

Resuming: when an upload is created its URL is written to ``uploads.json`` beside the
config, under the server and the file's absolute path, with the file's fingerprint (size,
mtime, SHA-256 of its first MiB). Run again on the same unchanged file: HEAD the upload,
continue from its ``Upload-Offset`` (only the remaining bytes are sent). A changed file's
old upload is terminated (its quota reservation released) and a new one started. The entry
goes when the upload completes or the server no longer has it."""
from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from . import config
from .api import Client
from .bodies import FileSlice
from .errors import EXIT_API, CliError
from .progress import Progress

TUS = {"Tus-Resumable": "1.0.0"}
DEFAULT_CHUNK = 256 * 1024 * 1024       # as the web app (TUS_CHUNK_SIZE): each PATCH waits for its last bytes in S3
HEAD_BYTES = 1024 * 1024
# The first PATCH carries only the bytes the server judges a file by (its first 4 KiB,
# docs/api.md "Uploads"): a file that is no video is refused at once. In a whole chunk the
# answer came only after the chunk was sent (requests reads it after its body) or the gateway
# stopped draining it (nginx's 30 s then, 5 s now): on a slow uplink, seconds and megabytes
# spent on a mistake.
FIRST_CHUNK = 4096
RETRIES = 5                          # transient failures in a row (no progress between them)
FINISH_TIMEOUT = (10, 600)           # the last PATCH answers once the file has been checked (probed)
RETRYABLE = {409, 423, 429, 460, 500, 502, 503, 504}   # 409: offset mismatch or lease lost: HEAD tells
# Tests only: exit like a killed process after this many PATCHes (tests/test_cli.py resumes it).
DIE_AFTER_ENV = "_STREAMVAULT_TEST_DIE_AFTER_PATCHES"


@dataclass(frozen=True)
class Fingerprint:
    path: str
    size: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: Path) -> "Fingerprint":
        st = path.stat()
        with open(path, "rb") as f:
            head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
        return cls(str(path), st.st_size, st.st_mtime_ns, head)


@dataclass
class Saved:
    upload_url: str
    video_id: str | None
    fingerprint: Fingerprint
    created_at: float


class UploadState:
    """uploads.json: "<server> <absolute path>" -> Saved."""

    def __init__(self):
        self.path = config.config_dir() / "uploads.json"

    def _all(self) -> dict:
        return config.read_json(self.path)

    def get(self, key: str) -> Saved | None:
        raw = self._all().get(key)
        try:
            return Saved(raw["upload_url"], raw.get("video_id"), Fingerprint(**raw["fingerprint"]), raw["created_at"])
        except (TypeError, KeyError):
            return None

    def put(self, key: str, saved: Saved) -> None:
        data = self._all()
        data[key] = asdict(saved)
        config.write_private(self.path, data)

    def drop(self, key: str) -> None:
        data = self._all()
        if data.pop(key, None) is not None:
            config.write_private(self.path, data)


def encode_metadata(meta: dict[str, str | None]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode('utf-8')).decode('ascii')}"
                    for k, v in meta.items() if v is not None)


@dataclass(frozen=True)
class Result:
    path: str
    video_id: str
    upload_url: str
    size: int
    resumed_from: int          # 0 for a fresh upload
    bytes_sent: int            # what this run sent


class Uploader:
    def __init__(self, client: Client, state: UploadState, chunk_size: int = DEFAULT_CHUNK,
                 sleep: Callable[[float], None] = time.sleep):
        self.client, self.state, self.chunk_size, self.sleep = client, state, chunk_size, sleep
        self.patches = 0

    def upload(self, path: Path, meta: dict[str, str | None], progress: Progress) -> Result:
        path = path.resolve()
        fp = Fingerprint.of(path)
        if fp.size == 0:
            raise CliError(f"{path}: the file is empty", EXIT_API, "empty_file")
        key = f"{self.client.server} {path}"
        url, video_id, offset = self._resume(key, fp)
        if url is None:
            url, video_id = self._create(fp, meta)
            self.state.put(key, Saved(url, video_id, fp, time.time()))
            offset = 0
        resumed_from = offset
        progress.start(offset)
        try:
            offset, video_id = self._send(path, url, offset, fp.size, video_id, progress)
        except CliError as exc:
            if exc.status in (404, 410, 413, 422):     # the server kept nothing: start afresh next time
                self.state.drop(key)
            raise
        self.state.drop(key)
        return Result(str(path), video_id, self.client.url(url), fp.size, resumed_from, fp.size - resumed_from)

    def _resume(self, key: str, fp: Fingerprint) -> tuple[str | None, str | None, int]:
        saved = self.state.get(key)
        if saved is None:
            return None, None, 0
        if saved.fingerprint != fp:                        # the file changed since: its old upload is void
            self._terminate(saved.upload_url)
            self.state.drop(key)
            return None, None, 0
        resp = self.client.request("HEAD", saved.upload_url, headers=TUS, ok=(200, 404, 410))
        if resp.status_code != 200:
            self.state.drop(key)
            return None, None, 0
        return saved.upload_url, resp.headers.get("X-Video-Id") or saved.video_id, int(resp.headers["Upload-Offset"])

    def _terminate(self, url: str) -> None:
        try:
            self.client.request("DELETE", url, headers=TUS, ok=(204, 404, 409, 410))
        except CliError:
            pass                          # the server sweeps abandoned uploads anyway

    def _create(self, fp: Fingerprint, meta: dict[str, str | None]) -> tuple[str, str | None]:
        resp = self.client.request("POST", "/api/uploads", ok=(201,), headers={
            **TUS, "Upload-Length": str(fp.size), "Upload-Metadata": encode_metadata(meta)})
        return resp.headers["Location"], resp.headers.get("X-Video-Id")

    def _send(self, path: Path, url: str, offset: int, size: int, video_id: str | None,
              progress: Progress) -> tuple[int, str | None]:
        failures = 0
        with open(path, "rb") as fh:
            while True:
                if offset >= size:
                    return offset, video_id
                fh.seek(offset)
                chunk = min(self.chunk_size, FIRST_CHUNK) if offset == 0 else self.chunk_size
                body = FileSlice(fh, min(chunk, size - offset), progress.advance)
                try:
                    resp = self.client.request("PATCH", url, data=body, ok=(204,), timeout=FINISH_TIMEOUT, headers={
                        **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
                except CliError as exc:
                    if not _transient(exc):
                        raise
                    failures += 1
                    if failures > RETRIES:
                        raise
                    self.sleep(min(30, 2 ** failures))
                    offset = self._offset(url, offset)
                    progress.set(offset)
                    continue
                failures = 0
                offset = int(resp.headers["Upload-Offset"])
                video_id = resp.headers.get("X-Video-Id") or video_id
                self.patches += 1
                if os.environ.get(DIE_AFTER_ENV) and self.patches >= int(os.environ[DIE_AFTER_ENV]):
                    os._exit(137)             # as if killed: no cleanup, the state file stays

    def _offset(self, url: str, last: int) -> int:
        """Where the server is now (a dropped PATCH may have stored part of its chunk)."""
        try:
            resp = self.client.request("HEAD", url, headers=TUS, ok=(200,))
        except CliError as exc:
            if _transient(exc):
                return last               # the next PATCH finds out (409 tells the offset)
            raise
        return int(resp.headers["Upload-Offset"])


def _transient(exc: CliError) -> bool:
    return exc.code == "unreachable" or exc.status in RETRYABLE
