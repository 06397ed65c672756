"""auth-svc settings (env), on top of the shared DB and token settings."""
from svcommon.config import REQUIRED, Setting, as_bool

SETTINGS = [
    Setting("AUTH_KEY_ENCRYPTION_SECRET", REQUIRED, help="encrypts token signing keys at rest"),
    Setting("ADMIN_USERNAME", "admin"),
    Setting("ADMIN_EMAIL", "admin@streamvault.local"),
    Setting("ADMIN_PASSWORD", "", help="bootstrap admin, created on first start when set"),
    Setting("SIGNUP_ENABLED", True, as_bool),
    Setting("ACCESS_TOKEN_TTL", 300, int),
    Setting("REFRESH_TOKEN_TTL", 14 * 24 * 3600, int),
    Setting("LOGIN_WINDOW_SECONDS", 900, int),
    Setting("LOGIN_MAX_FAILURES_ACCOUNT", 5, int),
    Setting("LOGIN_MAX_FAILURES_IP", 30, int),
    Setting("LOGIN_LOCK_SECONDS", 300, int),
    Setting("SERVICE_SECRET_UPLOAD", ""),
    Setting("SERVICE_SECRET_STREAMING", ""),
    Setting("SERVICE_SECRET_WATERMARK", ""),
]
