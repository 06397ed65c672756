"""Settings from the environment, validated once at start-up.

Each service declares its settings as a list of ``Setting``; ``load`` reads them from
the environment (test_config overrides win), converts types and raises ``ConfigError``
naming *every* missing or malformed variable at once, so a misconfigured container
dies at boot with one clear message instead of failing on its first request.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

REQUIRED = object()


class ConfigError(RuntimeError):
    pass


def as_bool(value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def secret_32(value: str) -> str:
    """Secrets are high-entropy strings (the launcher makes 43-character token_urlsafe(32))."""
    if len(value) < 32:
        raise ValueError("must be at least 32 characters of random secret")
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any = REQUIRED
    cast: Callable[[str], Any] = str
    help: str = ""


# Settings every service shares: the database and how to verify tokens.
DB_SETTINGS = [
    Setting("DB_HOST", "127.0.0.1"),
    Setting("DB_PORT", 3306, int),
    Setting("DB_NAME", "streamvault"),
    Setting("DB_USER", "streamvault"),
    Setting("DB_PASSWORD", REQUIRED, help="MariaDB password for DB_USER"),
    Setting("DB_POOL_SIZE", 16, int, "per process; a request may hold two (its own + a security event)"),
]

TOKEN_SETTINGS = [
    Setting("JWT_ISSUER", "streamvault-auth"),
    Setting("JWT_AUDIENCE", "streamvault"),
    Setting("JWKS_URL", "http://127.0.0.1:8000/.well-known/jwks.json"),
    Setting("COOKIE_SECURE", False, as_bool, "set true behind HTTPS"),
    Setting("TRUSTED_PROXY_HOPS", 1, int, "reverse proxies in front (the gateway)"),
    Setting("DPOP_MAX_AGE_SECONDS", 60, int),
]


# Request bodies (svcommon.bodylimit): every route gets BODY_MAX_BYTES unless it raises
# its own limit; after a refusal an unread remainder up to BODY_DRAIN_MAX_BYTES is drained
# (within BODY_DRAIN_SECONDS), a bigger one closes the connection.
BODY_SETTINGS = [
    Setting("BODY_MAX_BYTES", 64 * 1024, int, "request body limit of every route without its own"),
    Setting("BODY_DRAIN_MAX_BYTES", 64 * 1024 * 1024, int, "unread body drained after a refusal (keeps the connection)"),
    Setting("BODY_DRAIN_SECONDS", 10.0, float, "time allowed for that drain; then the connection closes"),
]


def load(spec: list[Setting], overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    out: dict[str, Any] = {}
    problems: list[str] = []
    for s in spec:
        if s.name in overrides:
            out[s.name] = overrides[s.name]
            continue
        raw = environ.get(s.name)
        if raw is None or raw == "":
            if s.default is REQUIRED:
                problems.append(f"{s.name} is required" + (f" ({s.help})" if s.help else ""))
            else:
                out[s.name] = s.default
            continue
        try:
            out[s.name] = s.cast(raw)
        except (TypeError, ValueError) as exc:
            problems.append(f"{s.name}={raw!r} is invalid: {exc}")
    if problems:
        raise ConfigError("configuration error: " + "; ".join(problems))
    # Pass through extra test/override keys (e.g. TESTING) untouched.
    for k, v in overrides.items():
        out.setdefault(k, v)
    return out
