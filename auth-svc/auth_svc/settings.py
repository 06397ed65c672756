"""auth-svc settings (env), on top of the shared DB and token settings."""
from svcommon.config import REQUIRED, Setting, as_bool
from svcommon.quota import QUOTA_SETTINGS

SETTINGS = [
    Setting("AUTH_KEY_ENCRYPTION_SECRET", REQUIRED, help="encrypts token signing keys at rest"),
    Setting("ADMIN_USERNAME", "admin"),
    Setting("ADMIN_EMAIL", "admin@streamvault.local"),
    Setting("ADMIN_PASSWORD", "", help="bootstrap admin, created on first start when set"),
    Setting("SIGNUP_ENABLED", True, as_bool),
    Setting("PASSWORD_MIN_LENGTH", 10, int, "NIST SP 800-63B: at least 8; we ask for 10"),
    Setting("PASSWORD_MIN_SCORE", 3, int, "zxcvbn guessability score (0-4) a new password must reach"),
    Setting("PASSWORD_RESET_TTL_SECONDS", 1800, int, "an admin-issued reset link works once, this long"),
    *QUOTA_SETTINGS,        # the upload quota default, shown beside each user's on the admin pages
    Setting("SMTP_HOST", "", help="mail reset links to the user; empty: the admin copies the link"),
    Setting("SMTP_PORT", 587, int),
    Setting("SMTP_STARTTLS", True, as_bool),
    Setting("SMTP_USERNAME", ""),
    Setting("SMTP_PASSWORD", ""),
    Setting("SMTP_FROM", "StreamVault <no-reply@streamvault.local>"),
    Setting("ACCESS_TOKEN_TTL", 300, int),
    Setting("REFRESH_TOKEN_TTL", 14 * 24 * 3600, int),
    Setting("REFRESH_REUSE_GRACE_SECONDS", 10, int,
            "a refresh token reused this soon after its rotation is a concurrent refresh (409), not a theft"),
    Setting("LOGIN_WINDOW_SECONDS", 900, int),
    Setting("LOGIN_MAX_FAILURES_ACCOUNT", 5, int, "per (account, client address): then that pair is locked"),
    Setting("LOGIN_MAX_FAILURES_IP", 30, int, "per client address, any accounts: then the address is locked"),
    Setting("LOGIN_LOCK_SECONDS", 300, int, "first lock; doubles per further failure, at most 64x"),
    Setting("LOGIN_SLOWDOWN_AFTER", 10, int, "failures on an account from all addresses before it is slowed down"),
    Setting("LOGIN_SLOWDOWN_STEP_SECONDS", 0.25, float, "delay per failure past LOGIN_SLOWDOWN_AFTER"),
    Setting("LOGIN_SLOWDOWN_MAX_SECONDS", 2.0, float, "the slow-down never exceeds this (never a lock)"),
    Setting("SIGNUP_MAX_PER_IP", 10, int, "sign-ups per client address per SIGNUP_WINDOW_SECONDS"),
    Setting("SIGNUP_WINDOW_SECONDS", 3600, int),
    Setting("PASSWORD_CHECKS_PER_MINUTE", 60, int, "strength checks (POST /api/auth/password-check) per client address"),
    Setting("SERVICE_SECRET_UPLOAD", ""),
    Setting("SERVICE_SECRET_STREAMING", ""),
    Setting("SERVICE_SECRET_WATERMARK", ""),
    Setting("SERVICE_SECRET_FSCK", ""),     # the consistency checker (an operator's command)
]
