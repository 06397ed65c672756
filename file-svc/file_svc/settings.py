"""file-svc settings (env): the S3 store it fronts and how it streams."""
from svcommon.config import REQUIRED, Setting, as_bool
from svcommon.partbuffers import MIN_PART_BYTES

MiB = 1024 * 1024

SETTINGS: list[Setting] = [
    Setting("S3_ENDPOINT", REQUIRED, help="S3 endpoint URL, e.g. http://127.0.0.1:8333"),
    Setting("S3_ACCESS_KEY", REQUIRED),
    Setting("S3_SECRET_KEY", REQUIRED),
    Setting("S3_BUCKET", "streamvault"),
    Setting("S3_REGION", "us-east-1"),
    # Streaming PUT: the request body is cut into parts of this size; at most
    # PUT_CONCURRENCY parts are in flight plus one being read, so memory per upload is
    # bounded by (PUT_CONCURRENCY + 1) * PART_SIZE whatever the object size.
    Setting("FILE_PART_SIZE", 8 * MiB, int, "bytes per S3 part for streamed PUTs (>= 5 MiB)"),
    Setting("FILE_PUT_CONCURRENCY", 4, int),
    # The largest part a part URL is signed for (multipart.part_url; S3 itself allows 5 GiB).
    Setting("FILE_MAX_PART_BYTES", 64 * MiB, int),
    # Freed part buffers kept for the next parts (svcommon.partbuffers): a streaming PUT's parts in
    # flight (4 x 8 MiB) come back as the next ones; the idle memory of a process is at most this.
    Setting("FILE_KEEP_BUFFER_BYTES", 32 * MiB, int, "idle part buffers kept for reuse per process"),
    # Backstop body limit of PUT /objects (originals up to UPLOAD_MAX_BYTES, suspects).
    Setting("FILE_MAX_OBJECT_BYTES", 64 * 1024 * MiB, int),
    # Signing each part's SHA-256 (SigV4 over plain HTTP) costs file-svc ~0.7 CPU s per GiB
    # and S3 as much to check it, for what file-svc stores itself (media, captions,
    # evidence; uploads' parts go straight to S3 at URLs it signs, multipart.part_url).
    # false sends UNSIGNED-PAYLOAD: only where the link to S3 is trusted
    # (loopback, a private network) or TLS (https S3_ENDPOINT) protects the bytes.
    Setting("S3_SIGN_PAYLOAD", True, as_bool, "sign request bodies to S3 (SigV4 payload hash)"),
    Setting("S3_RETRY_AFTER_SECONDS", 5, int, "Retry-After sent when S3 is unreachable"),
    # A stopped or frozen S3 must cost a request a bounded wait, not a hang: each attempt
    # waits at most this long to connect / for each read, and a request makes at most
    # S3_MAX_ATTEMPTS attempts before answering 503 storage_unavailable.
    Setting("S3_CONNECT_TIMEOUT_SECONDS", 3.0, float),
    Setting("S3_READ_TIMEOUT_SECONDS", 10.0, float),
    Setting("S3_MAX_ATTEMPTS", 2, int),
]


def validate(cfg: dict) -> None:
    from svcommon.config import ConfigError
    if int(cfg["FILE_PART_SIZE"]) < MIN_PART_BYTES:
        raise ConfigError("configuration error: FILE_PART_SIZE must be at least 5 MiB (S3 minimum part size)")
    if int(cfg["FILE_PUT_CONCURRENCY"]) < 1:
        raise ConfigError("configuration error: FILE_PUT_CONCURRENCY must be >= 1")
