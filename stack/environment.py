"""The environment of each native service process: only the settings that service reads,
as docker-compose.yml gives each container (.env.example documents each)."""
from __future__ import annotations

from .layout import SERVICES, Stack

# Read by every Python service (svcommon: tokens, cookies, proxy hops, logging).
_BASE = {"JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "COOKIE_SECURE", "TRUSTED_PROXY_HOPS", "LOG_LEVEL"}
# Plus the database and the other services' URLs: every service but file-svc.
_SERVICE = _BASE | {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "PUBLIC_URL",
                    *(f"{name.upper()}_SVC_URL" for name in SERVICES)}
_WATERMARK = _SERVICE | {"SERVICE_SECRET_WATERMARK", "WATERMARK_SECRET", "MEDIA_MASTER_KEY"}
READS = {
    "auth": _SERVICE | {"AUTH_KEY_ENCRYPTION_SECRET", "ADMIN_USERNAME", "ADMIN_EMAIL", "ADMIN_PASSWORD",
                        "SIGNUP_ENABLED", "SERVICE_SECRET_UPLOAD", "SERVICE_SECRET_STREAMING",
                        "SERVICE_SECRET_WATERMARK", "SERVICE_SECRET_FSCK", "PASSWORD_MIN_LENGTH", "PASSWORD_MIN_SCORE",
                        "PASSWORD_RESET_TTL_SECONDS", "SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_USERNAME",
                        "SMTP_PASSWORD", "SMTP_FROM"},
    "file": _BASE | {"S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_REGION"},
    "upload": _SERVICE | {"SERVICE_SECRET_UPLOAD"},
    "streaming": _SERVICE | {"SERVICE_SECRET_STREAMING", "STREAM_MASTER_KEY", "MEDIA_MASTER_KEY",
                             "WATERMARK_SECRET"},
    "watermark": _WATERMARK,
    "worker": _WATERMARK,           # the media workers run with the watermark-svc settings
    # The consistency checker (`make fsck`: watermark_svc.fsck): the watermark-svc settings
    # (database, MEDIA_MASTER_KEY to name sealed segments) and its own file-svc identity.
    "fsck": _WATERMARK | {"SERVICE_SECRET_FSCK"},
}


def stack_env(stack: Stack, secrets: dict, extra: dict | None = None) -> dict[str, str]:
    """Every setting of the stack, secrets included: what tests and benchmarks read back
    (passwords, DB and S3 access). No process is given all of it: see ``service_env``."""
    env = {
        "DB_HOST": "127.0.0.1", "DB_PORT": str(stack.mariadb_port), "DB_NAME": "streamvault",
        "DB_USER": "streamvault", "DB_PASSWORD": secrets["DB_PASSWORD"],
        "S3_ENDPOINT": stack.s3_endpoint, "S3_ACCESS_KEY": secrets["S3_ACCESS_KEY"],
        "S3_SECRET_KEY": secrets["S3_SECRET_KEY"], "S3_BUCKET": "streamvault", "S3_REGION": "us-east-1",
        "JWKS_URL": f"{stack.url('auth')}/.well-known/jwks.json",
        "JWT_ISSUER": "streamvault-auth", "JWT_AUDIENCE": "streamvault",
        "AUTH_KEY_ENCRYPTION_SECRET": secrets["AUTH_KEY_ENCRYPTION_SECRET"],
        "ADMIN_USERNAME": "admin", "ADMIN_EMAIL": "admin@streamvault.local",
        "ADMIN_PASSWORD": secrets["ADMIN_PASSWORD"],
        "SIGNUP_ENABLED": "true", "COOKIE_SECURE": "false", "TRUSTED_PROXY_HOPS": "1",
        "WATERMARK_SECRET": secrets["WATERMARK_SECRET"], "STREAM_MASTER_KEY": secrets["STREAM_MASTER_KEY"],
        "MEDIA_MASTER_KEY": secrets["MEDIA_MASTER_KEY"],
        "SERVICE_SECRET_UPLOAD": secrets["SERVICE_SECRET_UPLOAD"],
        "SERVICE_SECRET_STREAMING": secrets["SERVICE_SECRET_STREAMING"],
        "SERVICE_SECRET_WATERMARK": secrets["SERVICE_SECRET_WATERMARK"],
        "SERVICE_SECRET_FSCK": secrets["SERVICE_SECRET_FSCK"],
        "PUBLIC_URL": stack.gateway_url,
        "LOG_LEVEL": "INFO",
    }
    for name in SERVICES:
        env[f"{name.upper()}_SVC_URL"] = stack.url(name)
    env.update(extra or {})
    return env


# Names the launcher sets; a service gets those of them it reads (READS).
STACK_SETTINGS = frozenset().union(*READS.values())


def for_service(service: str, env: dict) -> dict:
    """``env`` (stack_env plus any tuning) without the stack settings ``service`` does not
    read: no service holds another's secrets. Other names (tuning such as LOG_LEVEL
    overrides or short test timings) pass through."""
    return {k: v for k, v in env.items() if k not in STACK_SETTINGS or k in READS[service]}


def service_env(stack: Stack, secrets: dict, service: str, extra: dict | None = None) -> dict[str, str]:
    return for_service(service, stack_env(stack, secrets, extra))


# SIGTERM to gunicorn (Ctrl-C, a restart, `docker compose stop`): it stops accepting at once
# and gives the requests in flight this long to finish before its workers are killed. The
# Dockerfile's GUNICORN_CMD_ARGS says the same, and compose's stop_grace_period (20 s) is
# longer, so Docker never kills a service that is still finishing (docs/operations.md).
GRACEFUL_TIMEOUT_SECONDS = 10


def gunicorn_command(stack: Stack, service: str, python: str = "python") -> list[str]:
    folder, package, _ = SERVICES[service]
    return [python, "-m", "gunicorn", "--chdir", folder, "--bind", f"127.0.0.1:{stack.port(service)}",
            "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--timeout", "120",
            "--graceful-timeout", str(GRACEFUL_TIMEOUT_SECONDS),
            # Idle keep-alive longer than the gateway's upstream keepalive_timeout (60 s):
            # the gateway must always be the one to drop an idle connection, or it may send
            # a request into a socket gunicorn is closing (a 502 on a non-idempotent request).
            "--keep-alive", "75", "--no-control-socket",
            # No gunicorn access log: svcommon.logs writes one JSON line per request (with
            # its request id); a second line per request only doubled the output.
            f"{package}:create_app()"]


def worker_command(python: str = "python") -> list[str]:
    """A media worker (watermark-svc); run with cwd watermark-svc/ (see ``WORKER_CWD``)."""
    return [python, "-m", "watermark_svc.worker"]


WORKER_CWD = "watermark-svc"
