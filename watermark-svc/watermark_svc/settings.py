"""watermark-svc settings (env): the API and the media workers share them."""
from svcommon.config import REQUIRED, Setting, as_bool, secret_32
from svcommon.mediaprobe import MEDIA_SETTINGS

from .media.chunks import SEGMENTS_PER_CHUNK

SETTINGS: list[Setting] = [
    Setting("WATERMARK_SECRET", REQUIRED, help="keys the forensic A/B patterns and codewords; never change it"),
    Setting("MEDIA_MASTER_KEY", REQUIRED, secret_32,
            "seals each video's content secret (segment keys); losing it makes stored media undecryptable"),
    Setting("FILE_SVC_URL", "http://127.0.0.1:4000"),
    Setting("AUTH_SVC_URL", "http://127.0.0.1:8000"),
    Setting("SERVICE_SECRET_WATERMARK", REQUIRED, help="client secret for service tokens"),
    Setting("SERVICE_SECRET_FSCK", "", help="the consistency checker's file-svc identity (watermark_svc.fsck only)"),
    Setting("WORKER_LEASE_SECONDS", 60, int, "a job whose lease lapses is retried by another worker"),
    Setting("WORKER_POLL_SECONDS", 1.0, float),
    Setting("WORKER_RETRY_BASE_SECONDS", 30, int, "backoff before retry n is base * 4^(n-1)"),
    Setting("WORKER_HEARTBEAT_FILE", "", help="touched by a live worker (idle loop and job leases); healthchecks read its age"),
    Setting("WORKER_CONVERT_SLICE_SECONDS", 10.0, float,
            "an idle worker converts delivery-v1 media in slices this long, then looks for jobs again"),
    Setting("WORK_DIR", "/tmp", help="scratch space for one job at a time; always cleaned"),
    Setting("X264_PRESET", "fast"),
    Setting("X264_THREADS", 1, int,
            "x264 threads per encoder; 1: a chunk job runs its A and B encoders side by side and the workers run in "
            "parallel, so one thread each keeps the cores busy with the least threading overhead (0: x264 chooses)"),
    Setting("CHUNK_SEGMENTS", SEGMENTS_PER_CHUNK, int, "segments (2 s each) per chunk job; one chunk job encodes one rung of them"),
    Setting("WATERMARK_STRENGTH", 1.0, float, "grey levels RMS of the A/B luma pattern"),
    Setting("FORENSICS_MAX_FALSE_ACCUSATION", 1e-6, float, "above this bound a trace answers 'no match'"),
    Setting("FORENSICS_MAX_UPLOAD_BYTES", 16 * 1024 ** 3, int, "largest suspect file accepted"),
    # The detector holds one fingerprint row per frame (x3 crop hypotheses, ~1.7 KB per
    # frame): at 30 fps one hour is ~190 MB, whatever the file claims.
    Setting("FORENSICS_MAX_SUSPECT_SECONDS", 3600, float, "longest suspect traced (published duration)"),
    # Webhooks (webhook_targets.py): never to loopback, private, link-local, multicast or
    # reserved addresses unless the operator allows it (a receiver on the same host or LAN).
    Setting("WEBHOOK_ALLOW_PRIVATE_TARGETS", False, as_bool,
            "true: webhooks may go to loopback/private addresses (registration and delivery)"),
    Setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, float, "connect and response wait of one webhook delivery"),
    *MEDIA_SETTINGS,
]
