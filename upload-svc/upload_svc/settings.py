"""upload-svc settings (env), on top of the shared DB and token settings."""
from svcommon.config import REQUIRED, Setting, as_bool
from svcommon.mediaprobe import MEDIA_SETTINGS
from svcommon.partbuffers import MIN_PART_BYTES
from svcommon.quota import QUOTA_SETTINGS
from svcommon.quota import validate as validate_quota

GiB = 1024 ** 3
MiB = 1024 ** 2

SETTINGS: list[Setting] = [
    Setting("FILE_SVC_URL", "http://127.0.0.1:4000"),
    Setting("AUTH_SVC_URL", "http://127.0.0.1:8000"),
    Setting("SERVICE_SECRET_UPLOAD", REQUIRED, help="client secret for file-svc service tokens"),
    Setting("UPLOAD_MAX_BYTES", 20 * GiB, int, "largest accepted video"),
    *QUOTA_SETTINGS,         # the default; an admin sets a user's own (users.upload_quota_bytes)
    Setting("UPLOADS_REQUIRE_ROLE", False, as_bool, "true: only uploader/admin roles may upload"),
    # Uploaded bytes (tus PATCHes and the streaming POST) are stored as S3 parts of this size
    # (S3 needs >= 5 MiB except the last); a request has up to TUS_PARTS_IN_FLIGHT parts
    # being stored at once while the next bytes arrive (a tus part whose bytes the PATCH's
    # length promises is sent as it fills), so it holds at most TUS_PARTS_IN_FLIGHT + 1 parts
    # in memory (parts.py): 4 x 16 MiB. 16 MiB rather than 8: every part costs two requests
    # (its URL from file-svc, its PUT to S3), and 8 MiB parts measured slower on both paths.
    # Three in flight rather than two: a streamed part goes at the client's pace and S3
    # takes one stream slower than the bytes come, so the next part's stream must overlap it
    # (tus 0.79x of direct boto3 against 0.72-0.74x with two, bench/results/upload.md).
    Setting("TUS_PART_SIZE", 16 * MiB, int),
    Setting("TUS_PARTS_IN_FLIGHT", 3, int, "parts of one upload request being stored at once"),
    # A PATCH's last parts are stored before it answers (the offset it reports is durable);
    # they are sent as their bytes arrive (the last whole part as two halves side by side),
    # so the client waits only for what S3 has not yet taken (0.05-0.08 s per PATCH against
    # 0.15 s when whole parts were sent once full). Larger chunks make that wait rarer, and
    # lose nothing (a broken PATCH keeps every part already stored; the client resumes from
    # HEAD; the browser sends a slice of the file, never held in memory). The web app in
    # headless Chromium, 1 GiB on 2 cores: 256 MiB chunks 10.3 s, 1 GiB 10.4 s, 64 MiB 11.2 s
    # (bench/results/upload.md).
    Setting("TUS_CHUNK_SIZE", 256 * MiB, int, "chunk size the web app's tus client uses"),
    Setting("TUS_LEASE_SECONDS", 20, int, "write lease on an upload, renewed while a PATCH streams"),
    Setting("UPLOAD_EXPIRY_HOURS", 72, int, "unfinished uploads idle this long are removed"),
    # Each probe copies the original to local scratch and runs ffprobe/ffmpeg children
    # under the MEDIA_* bounds; only this many run at once per process.
    Setting("PROBE_CONCURRENCY", 2, int, "probes running at once per upload-svc process"),
    Setting("PROBE_WAIT_SECONDS", 10.0, float, "how long a finished upload waits for a probe slot before 503"),
    Setting("PROBE_SCRATCH_DIR", "", help="where the probe's local copy lives (empty = TMPDIR)"),
    *MEDIA_SETTINGS,
    # Caption tracks (captions.py): a two-hour film's subtitles are 100-200 KiB and 1-2000 cues.
    Setting("CAPTION_MAX_BYTES", 512 * 1024, int, "largest caption file (WebVTT or SRT)"),
    Setting("CAPTION_MAX_CUES", 5000, int, "most cues in one caption file"),
    Setting("CAPTION_TRACKS_PER_VIDEO", 20, int, "caption tracks (languages) per video"),
    Setting("SSE_POLL_SECONDS", 1.0, float),
    # Each open event stream holds a worker thread: streams are short and capped (streams.py).
    Setting("SSE_MAX_SECONDS", 120, int, "an event stream closes after this; EventSource reconnects"),
    Setting("SSE_MAX_STREAMS_PER_USER", 4, int, "open event streams per user (all processes); 429 beyond"),
    Setting("SSE_MAX_STREAMS_PER_WORKER", 4, int, "open event streams per worker process; keep well below "
                                                  "gunicorn --threads (8) so uploads always find a thread"),
    # A download of an original holds a thread while the client reads (the gateway does not
    # buffer /api/videos: a whole original, up to UPLOAD_MAX_BYTES, would land in its tmpfs).
    Setting("DOWNLOAD_MAX_PER_WORKER", 2, int, "original downloads at once per worker process; with the "
                                              "event streams, keep well below gunicorn --threads (8)"),
]


def validate(cfg: dict) -> None:
    from svcommon.config import ConfigError
    for name in ("SSE_MAX_STREAMS_PER_WORKER", "SSE_MAX_STREAMS_PER_USER", "DOWNLOAD_MAX_PER_WORKER"):
        if int(cfg[name]) < 1:
            raise ConfigError(f"configuration error: {name} must be >= 1")
    validate_quota(cfg)
    if int(cfg["TUS_PARTS_IN_FLIGHT"]) < 1:
        raise ConfigError("configuration error: TUS_PARTS_IN_FLIGHT must be >= 1")
    if int(cfg["TUS_PART_SIZE"]) < MIN_PART_BYTES:
        raise ConfigError("configuration error: TUS_PART_SIZE must be at least 5 MiB (S3 minimum part size)")
