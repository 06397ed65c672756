"""Client for file-svc, the only service that holds S3's credentials (used by upload-svc,
streaming-svc and the media workers). One exception to "every byte through file-svc": a
multipart upload's parts are PUT straight to S3, at URLs file-svc signs (``upload_part``).

It fetches a short-lived service token from auth-svc (client credentials) and caches it
until shortly before expiry; a 401 from file-svc (expired token, rotated key) refreshes it
once. Bodies are streamed both ways: ``put_stream`` accepts any iterable of bytes or a file
object, ``get`` returns a streaming ``requests.Response`` (Range passed through).

Key layout shared by every service (file-svc enforces per-service prefixes):
``originals/{video_id}/...`` uploaded sources, ``media/{video_id}/...`` everything derived
(renditions, thumbnails), ``captions/{video_id}/...`` the uploader's caption tracks (kept
apart from media/, which reprocessing rewrites), ``forensics/...`` watermark evidence.

Services wire it as an extension: ``filestore = FileStoreExtension("upload")`` in
``extensions.py``, ``filestore.init_app(app)`` in ``create_app``, ``filestore()`` in a
request, ``filestore(app)`` in a worker loop. ``init_app`` also makes a FileStoreError no
view handles an answer (``storage_error``: 503 ``storage_unavailable`` + Retry-After when
file-svc, S3 behind it, or auth-svc for the token is unreachable) and adds file-svc's
readiness to the app's /readyz as ``storage``.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Iterable, Iterator
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from .appext import PerApp
from .errors import APIError
from .health import add_ready_check
from .logs import current_request_id

log = logging.getLogger("svcommon.filestore")
RETRY_AFTER_SECONDS = 5        # told to clients while storage is unreachable
PART_ATTEMPTS = 3              # a part PUT to S3 busy or unreachable, before giving up (503)
# A part PUT's waits: to connect, and for each send or the answer (S3 answers a part at once
# once it has its bytes; a stopped S3 must fail the upload, not hold it for minutes).
PART_TIMEOUT = (5, 30)
PART_RETRY_SECONDS = 0.5       # waited after the first failed attempt, twice that after the second
S3_ERROR_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")
# S3 error codes meaning busy or failing (retry later), for file-svc's boto3 client and the
# part PUTs here alike.
S3_UNAVAILABLE_CODES = frozenset({"ServiceUnavailable", "SlowDown", "InternalError", "503", "500", "RequestTimeout"})
READY_TIMEOUT_SECONDS = 5      # /readyz's question to file-svc (whose own S3 check takes ≤ 3 s)

ORIGINALS = "originals/"
MEDIA = "media/"
CAPTIONS = "captions/"
FORENSICS = "forensics/"
PREFIXES = (ORIGINALS, MEDIA, CAPTIONS, FORENSICS)     # every top-level prefix we store under


def original_prefix(video_id: str) -> str:
    return f"{ORIGINALS}{video_id}/"


def media_prefix(video_id: str) -> str:
    return f"{MEDIA}{video_id}/"


def captions_prefix(video_id: str) -> str:
    return f"{CAPTIONS}{video_id}/"


class FileStoreError(Exception):
    """file-svc refused or failed; ``status``/``code``/``message`` come from its JSON error."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"file-svc {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def unavailable(self) -> bool:
        return self.status in (502, 503, 504)


class NotFound(FileStoreError):
    pass


def _error(resp: requests.Response) -> FileStoreError:
    try:
        body = resp.json()
        code, message = body.get("code", "error"), body.get("error", resp.reason)
    except ValueError:
        code, message = "error", (resp.text[:200] or resp.reason or "")
    cls = NotFound if resp.status_code == 404 else FileStoreError
    return cls(resp.status_code, code, message)


def _s3_error(resp: requests.Response) -> FileStoreError:
    """S3's XML error (a part PUT) as the FileStoreError file-svc would have answered."""
    found = S3_ERROR_CODE.search(resp.text[:4096])
    code = found[1] if found else ""
    if code == "NoSuchUpload":
        return NotFound(404, "no_such_upload", "no such multipart upload (completed or aborted)")
    if resp.status_code >= 500 or code in S3_UNAVAILABLE_CODES:
        return FileStoreError(503, "storage_unavailable", f"object storage is busy or failing ({code or resp.status_code})")
    return FileStoreError(502, "storage_error", f"object storage refused a part: {code or resp.status_code}")


class FileStore:
    def __init__(self, base_url: str, auth_url: str, service: str, secret: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.service = service
        self._secret = secret
        self.timeout = timeout
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_maxsize=32))
        # Part PUTs to S3 (signed URLs): no file-svc token, no request id, a pool of their own.
        self.s3_session = requests.Session()
        self.s3_session.mount("http://", HTTPAdapter(pool_maxsize=32))
        self.s3_session.mount("https://", HTTPAdapter(pool_maxsize=32))

    @classmethod
    def from_config(cls, cfg, service: str) -> "FileStore":
        return cls(cfg["FILE_SVC_URL"], cfg["AUTH_SVC_URL"], service, cfg[f"SERVICE_SECRET_{service.upper()}"])

    # ---- credentials ------------------------------------------------------------------
    def token(self, force: bool = False) -> str:
        with self._lock:
            now = time.monotonic()
            if not force and self._token and self._token[1] > now:
                return self._token[0]
            try:
                resp = self.session.post(f"{self.auth_url}/api/auth/service-token", timeout=10,
                                         json={"service": self.service, "secret": self._secret})
            except requests.RequestException as exc:
                raise FileStoreError(503, "auth_unavailable", f"cannot reach auth-svc for a service token: {exc}")
            if resp.status_code != 200:
                raise FileStoreError(503 if resp.status_code >= 500 else 500, "service_auth_failed",
                                     f"auth-svc refused our service credentials ({resp.status_code})")
            # Tokens live 5 minutes; renew a minute early so none expires in flight.
            self._token = (resp.json()["access_token"], now + 240)
            return self._token[0]

    # ---- transport --------------------------------------------------------------------
    def _request(self, method: str, path: str, *, retry_auth: bool = True, ok=(200,), **kw) -> requests.Response:
        headers = dict(kw.pop("headers", None) or {})
        rid = current_request_id()
        if rid:
            headers.setdefault("X-Request-ID", rid)
        kw.setdefault("timeout", self.timeout)
        for attempt in (0, 1):
            headers["Authorization"] = f"Bearer {self.token(force=attempt == 1)}"
            try:
                resp = self.session.request(method, self.base_url + path, headers=headers, **kw)
            except requests.ConnectionError as exc:
                raise FileStoreError(503, "file_svc_unavailable", f"cannot reach file-svc: {exc}")
            except requests.Timeout as exc:
                raise FileStoreError(504, "file_svc_timeout", f"file-svc did not answer in time: {exc}")
            if resp.status_code == 401 and attempt == 0 and retry_auth:
                resp.close()
                continue
            break
        if resp.status_code not in ok:
            err = _error(resp)
            resp.close()
            raise err
        return resp

    @staticmethod
    def _path(kind: str, key: str) -> str:
        return f"/{kind}/{quote(key, safe='/')}"

    # ---- objects ----------------------------------------------------------------------
    def put_stream(self, key: str, body: Iterable[bytes] | bytes, length: int | None = None,
                   content_type: str = "application/octet-stream") -> dict:
        """Stream ``body`` to the object ``key`` (chunked when ``length`` is unknown)."""
        headers = {"Content-Type": content_type}
        if length is not None:
            headers["Content-Length"] = str(length)
        # A streamed body cannot be replayed after a 401, so make sure the token is fresh.
        self.token()
        resp = self._request("PUT", self._path("objects", key), data=body, headers=headers, retry_auth=False,
                             ok=(200, 201), timeout=(10, 600))
        return resp.json()

    def get(self, key: str, range_header: str | None = None, stream: bool = True) -> requests.Response:
        headers = {"Range": range_header} if range_header else {}
        return self._request("GET", self._path("objects", key), headers=headers, stream=stream, ok=(200, 206, 416))

    def download(self, key: str, dest, chunk: int = 1024 * 1024) -> int:
        """Stream an object to the local file ``dest``; returns its size in bytes."""
        size = 0
        with self.get(key) as resp, open(dest, "wb") as out:
            for part in resp.iter_content(chunk):
                out.write(part)
                size += len(part)
        return size

    def get_bytes(self, key: str) -> bytes:
        resp = self.get(key, stream=False)
        return resp.content

    def head(self, key: str) -> dict | None:
        try:
            resp = self._request("HEAD", self._path("objects", key))
        except NotFound:
            return None
        return {"size": int(resp.headers.get("Content-Length", 0)), "etag": resp.headers.get("ETag", ""),
                "content_type": resp.headers.get("Content-Type", "")}

    def delete(self, key: str) -> None:
        self._request("DELETE", self._path("objects", key), ok=(204,))

    def delete_prefix(self, prefix: str) -> int:
        resp = self._request("DELETE", "/objects", params={"prefix": prefix}, ok=(200,))
        return int(resp.json()["deleted"])

    def list(self, prefix: str) -> Iterator[dict]:
        token = None
        while True:
            params = {"prefix": prefix}
            if token:
                params["continuation"] = token
            body = self._request("GET", "/objects", params=params).json()
            yield from body["items"]
            token = body.get("next")
            if not token:
                return

    def list_multipart(self, prefix: str) -> list[dict]:
        """Unfinished multipart uploads under ``prefix``: {key, upload_id, initiated (ISO)}."""
        return self._request("GET", "/multipart", params={"prefix": prefix}).json()["items"]

    # ---- multipart assembly (resumable uploads) ---------------------------------------
    def create_multipart(self, key: str, content_type: str = "application/octet-stream") -> str:
        resp = self._request("POST", self._path("objects", key), params={"uploads": ""}, ok=(201,),
                             headers={"Content-Type": content_type}, data=b"")
        return resp.json()["upload_id"]

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Store part ``number`` of a multipart upload; returns its ETag. The bytes go straight
        to S3, to a URL file-svc signs for exactly this part and length (S3's credentials stay
        in file-svc; the second hop and SigV4's hash of the body cost about a sixth of an
        upload's CPU on 2 cores: 12.2-12.4 -> 10.1-10.4 CPU s per GiB, bench/results/upload.md). S3 busy or unreachable: tried PART_ATTEMPTS times, then 503; an expired or
        refused signature: once more with a fresh URL."""
        for attempt in range(PART_ATTEMPTS):
            url = self._request("GET", self._path("objects", key),
                                params={"upload_id": upload_id, "part": number, "length": len(data)}).json()["url"]
            try:
                resp = self.s3_session.put(url, data=data, timeout=PART_TIMEOUT)
            except requests.RequestException as exc:
                err = FileStoreError(503, "storage_unavailable", f"cannot store a part in S3: {exc}")
            else:
                with resp:
                    if resp.status_code == 200:
                        return resp.headers.get("ETag", "").strip('"')
                    err = _s3_error(resp)
                if not err.unavailable and not (err.status == 403 and attempt == 0):
                    raise err
            log.warning("a part's PUT to S3 failed", extra={"key": key, "part": number, "attempt": attempt + 1,
                                                           "error": err.message})
            if attempt + 1 < PART_ATTEMPTS:
                time.sleep(PART_RETRY_SECONDS * (attempt + 1))
        raise err

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict]) -> dict:
        body = {"parts": [{"n": p["n"], "etag": p["etag"]} for p in parts]}
        return self._request("POST", self._path("objects", key), params={"upload_id": upload_id}, json=body,
                             timeout=(10, 300)).json()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._request("DELETE", self._path("objects", key), params={"upload_id": upload_id}, ok=(204,))
        except NotFound:
            pass  # already completed or aborted


def storage_error(exc: FileStoreError) -> APIError:
    """The one mapping of a file-svc failure to an answer: unreachable or overloaded (file-svc,
    S3 behind it, auth-svc for the token) → 503 ``storage_unavailable`` + Retry-After; a
    refusal → 502 ``storage_error``."""
    if exc.unavailable:
        return APIError(503, "storage_unavailable",
                        f"Video storage is unavailable; retry in {RETRY_AFTER_SECONDS} s.",
                        {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})
    return APIError(502, "storage_error", f"storage refused the request: {exc.message}")


class FileStoreExtension(PerApp[FileStore]):
    """The app's file-svc client, authenticated as ``service`` (``SERVICE_SECRET_<SERVICE>``)."""

    def __init__(self, service: str):
        super().__init__("svcommon.filestore", lambda cfg: FileStore.from_config(cfg, service))

    def init_app(self, app) -> FileStore:
        store = super().init_app(app)
        # Views catch FileStoreError only where they answer something else (a missing
        # object → 404); the rest is answered here, logged like every other refusal.
        app.register_error_handler(FileStoreError, lambda exc: app.handle_user_exception(storage_error(exc)))

        def storage_ready() -> None:
            resp = store.session.get(f"{store.base_url}/readyz", timeout=READY_TIMEOUT_SECONDS)
            if resp.status_code != 200:
                failing = {k: v for k, v in (resp.json().get("checks") or {}).items() if v != "ok"}
                raise RuntimeError(f"file-svc not ready: {failing or resp.status_code}")
        add_ready_check(app, "storage", storage_ready)
        return store
