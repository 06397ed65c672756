"""streaming-svc settings (env), validated at start (svcommon.config)."""
from svcommon.config import REQUIRED, Setting


def secret_32(value: str) -> str:
    """Secrets are high-entropy strings (the launcher makes 43-character token_urlsafe(32))."""
    if len(value) < 32:
        raise ValueError("must be at least 32 characters of random secret")
    return value


def positive(cast):
    def check(value):
        v = cast(value)
        if v <= 0:
            raise ValueError("must be positive")
        return v
    return check


SETTINGS: list[Setting] = [
    Setting("STREAM_MASTER_KEY", REQUIRED, secret_32, "seals per-session keys in the database"),
    Setting("MEDIA_MASTER_KEY", REQUIRED, secret_32, "opens each video's sealed content secret (segment keys)"),
    Setting("WATERMARK_SECRET", REQUIRED, secret_32, "keys the A/B codewords and metadata tags"),
    Setting("FILE_SVC_URL", "http://127.0.0.1:4000"),
    Setting("AUTH_SVC_URL", "http://127.0.0.1:8000"),
    # /api/openapi.json merges these services' documents with this one's (apidocs.py)
    Setting("UPLOAD_SVC_URL", "http://127.0.0.1:3000"),
    Setting("WATERMARK_SVC_URL", "http://127.0.0.1:5000"),
    Setting("SERVICE_SECRET_STREAMING", REQUIRED, help="client secret for service tokens (file-svc)"),
    Setting("SESSION_TTL_SECONDS", 300, positive(int), "a session lives this long past its last heartbeat"),
    Setting("KEY_ROTATION_SECONDS", 300, positive(int), "a heartbeat after this long starts a new key epoch"),
    Setting("KEY_GRACE_SECONDS", 60, positive(int), "the previous epoch's key stays valid this long"),
    Setting("HEARTBEAT_SECONDS", 30, positive(int), "how often the player sends heartbeats"),
    Setting("MAX_CONCURRENT_STREAMS", 3, positive(int), "live sessions per user"),
    Setting("SESSION_CACHE_SECONDS", 1.0, float, "manifest and init requests reuse a session lookup this long"),
    Setting("INIT_CACHE_MB", 32, positive(int), "init segments and stills kept in memory per process"),
    Setting("KEY_BURST_SECONDS", 120.0, positive(float), "media seconds of keys a session may take at once"),
    Setting("KEY_PACE_FACTOR", 1.5, positive(float), "then this many media seconds per second of the session"),
    Setting("KEYS_MAX_PER_REQUEST", 16, positive(int), "segment keys in one key response"),
    Setting("FIRST_KEYS_COUNT", 3, positive(int), "keys per track sent with the session-open response"),
    Setting("UNLOCK_GRANT_SECONDS", 3600, positive(int), "a correct video password opens it this long"),
    Setting("UNLOCK_MAX_FAILURES", 5, positive(int), "wrong passwords per user and video in the window"),
    Setting("UNLOCK_WINDOW_SECONDS", 900, positive(int)),
    Setting("UNLOCK_LOCK_SECONDS", 300, positive(int)),
    Setting("UNLOCK_VIDEO_BURST", 20, positive(int), "wrong passwords per video, across accounts, before each "
                                                     "further attempt waits for a refill"),
    Setting("UNLOCK_VIDEO_REFILL_SECONDS", 30, positive(int), "the per-video budget regains one attempt this often"),
    Setting("LIBRARY_PAGE_SIZE", 24, positive(int)),
    Setting("DOWNLOADS_PER_HOUR", 10, positive(int), "download tickets per user in any hour (one per session)"),
    Setting("DOWNLOAD_TICKET_SECONDS", 60, positive(int), "a download ticket must be used within this long"),
    Setting("DOWNLOAD_MAX_PER_WORKER", 2, positive(int), "downloads being sent at once per worker process (each "
                                                        "holds a thread while the client reads)"),
    Setting("VIEW_MIN_WATCH_SECONDS", 10, positive(int), "playing time a session needs before it counts as a view"),
    Setting("VIEW_REPEAT_MINUTES", 30, positive(int), "a viewer's views of one video count once in this long"),
]
