"""The one boto3 client, and the translation of S3/network failures into clear API errors.
Nothing else in StreamVault imports boto3."""
from __future__ import annotations

import contextlib
import logging
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from svcommon.errors import APIError
from svcommon.filestore import S3_UNAVAILABLE_CODES

log = logging.getLogger("file_svc.s3")

NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """One app's boto3 client (thread-safe), bucket and Retry-After; the app extension
    ``extensions.s3`` holds it. Part-upload threads get it passed in (no app context)."""

    def __init__(self, cfg: dict):
        self._bucket_ready = threading.Event()
        self._lock = threading.Lock()
        self.bucket = cfg["S3_BUCKET"]
        self.retry_after = int(cfg["S3_RETRY_AFTER_SECONDS"])
        self.client = self._client(cfg, float(cfg["S3_CONNECT_TIMEOUT_SECONDS"]),
                                   float(cfg["S3_READ_TIMEOUT_SECONDS"]), int(cfg["S3_MAX_ATTEMPTS"]), 64)
        # /readyz asks with a client of its own: one short attempt (1 s to connect, 2 s to
        # answer), so it answers in time.
        self.probe_client = self._client(cfg, 1, 2, 1, 2)

    @staticmethod
    def _client(cfg: dict, connect: float, read: float, attempts: int, pool: int):
        s3opts = {"addressing_style": "path"}
        if not cfg.get("S3_SIGN_PAYLOAD", True):      # settings.py: when that is safe
            s3opts["payload_signing_enabled"] = False
        return boto3.session.Session().client(
            "s3", endpoint_url=cfg["S3_ENDPOINT"], region_name=cfg["S3_REGION"],
            aws_access_key_id=cfg["S3_ACCESS_KEY"], aws_secret_access_key=cfg["S3_SECRET_KEY"],
            config=Config(signature_version="s3v4", s3=s3opts,
                          connect_timeout=connect, read_timeout=read, max_pool_connections=pool,
                          retries={"total_max_attempts": attempts, "mode": "standard"},
                          # Only the checksums S3 requires: not every S3 (SeaweedFS, older
                          # MinIO) understands the newer streaming-trailer checksums.
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    def ensure_bucket(self) -> None:
        """Create the (private) bucket once; idempotent across replicas and restarts."""
        if self._bucket_ready.is_set():
            return
        with self._lock, self.errors():
            if self._bucket_ready.is_set():
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                try:
                    # No ACL grants and no policy: only our credentials can read it.
                    self.client.create_bucket(Bucket=self.bucket)
                    log.info("bucket created", extra={"bucket": self.bucket})
                except ClientError as exc2:
                    if error_code(exc2) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready.set()

    def _unavailable(self, detail: str) -> APIError:
        retry = str(self.retry_after)
        return APIError(503, "storage_unavailable",
                        f"object storage is unreachable or overloaded; retry in {retry} s ({detail})",
                        {"Retry-After": retry})

    @contextlib.contextmanager
    def errors(self, not_found: str = "no such object"):
        """Translate boto errors: missing → 404, S3 down → 503 + Retry-After, rest → 502."""
        try:
            yield
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError) as exc:
            log.error("S3 unreachable", extra={"error": str(exc)})
            raise self._unavailable(exc.__class__.__name__)
        except ClientError as exc:
            code = error_code(exc)
            if code in NOT_FOUND:
                raise APIError(404, "not_found", not_found)
            if code == "NoSuchUpload":
                raise APIError(404, "no_such_upload", "no such multipart upload (completed or aborted)")
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise APIError(400, "invalid_parts", f"S3 refused the part list: {code}")
            if code in S3_UNAVAILABLE_CODES:
                raise self._unavailable(code)
            log.error("S3 error", extra={"error": str(exc)})
            raise APIError(502, "storage_error", f"object storage error: {code or 'unknown'}")
        except BotoCoreError as exc:
            log.error("S3 client error", extra={"error": str(exc)})
            raise self._unavailable(exc.__class__.__name__)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
