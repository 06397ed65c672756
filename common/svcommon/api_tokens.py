"""API tokens for scripts and CI, as every service verifies them (auth-svc creates, lists and
revokes them: auth_svc/api_tokens.py).

A token is opaque: ``svt_`` followed by 32 random bytes in base64url (43 characters), so a
secret scanner can spot one in a leaked log or repository. Only its SHA-256 is stored: the
token has 256 bits of entropy, so a slow password hash would add nothing but latency.

Every request carrying one costs one indexed query (``uq_api_token_hash`` joined to the
user) and nothing is cached: a revoked or expired token, a disabled account or a demoted
admin is refused on the very next request. ``last_used_at`` is written at most once a
minute per token unless the address changes; a first use from an address the token has
never been used from is a security event (``api_token_new_address``).

What a token may do is its scopes, checked by ``svcommon.auth.require_principal(scope=)``:
a route that names no scope refuses every API token (403 ``insufficient_scope``). So
playback (device-bound DPoP), account changes (password, tokens, devices) and the admin
console never accept one, whatever its scopes."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .db import execute, query
from .timeutil import utcnow_naive

PREFIX = "svt_"
TOKEN_RE = re.compile(r"svt_[A-Za-z0-9_-]{43}")
SCOPES = ("read", "upload", "forensics")
ADMIN_ONLY_SCOPES = ("forensics",)
TOUCH_EVERY = timedelta(seconds=60)     # last_used_at is this precise, at most one write per token per minute


@dataclass(frozen=True)
class TokenRecord:
    """An API token row as authentication needs it (never the token itself)."""
    id: str
    user_id: str
    username: str
    role: str
    user_disabled: bool
    scopes: frozenset[str]
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX)


def lookup(conn, token: str) -> TokenRecord | None:
    """The token's row with its user, or None when no such token exists (malformed too)."""
    if not TOKEN_RE.fullmatch(token):
        return None
    row = query(conn, "SELECT t.id, t.user_id, t.scopes, t.expires_at, t.revoked_at, t.last_used_at, "
                      "t.last_used_ip, u.username, u.role, u.disabled "
                      "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = %s",
                (token_hash(token),), one=True)
    if row is None:
        return None
    return TokenRecord(id=row["id"], user_id=row["user_id"], username=row["username"], role=row["role"],
                       user_disabled=bool(row["disabled"]), scopes=frozenset(row["scopes"].split()),
                       expires_at=row["expires_at"], revoked_at=row["revoked_at"],
                       last_used_at=row["last_used_at"], last_used_ip=row["last_used_ip"])


def refusal(rec: TokenRecord, now: datetime | None = None) -> str | None:
    """Why a found token is not accepted now (None: it is)."""
    if rec.revoked_at is not None:
        return "API token revoked"
    if rec.expires_at <= (now or utcnow_naive()):
        return "API token expired"
    return None


def note_use(conn, rec: TokenRecord, ip: str) -> bool:
    """Record a use (``last_used_*``, throttled as the module says) and return whether ``ip``
    is an address this token was never used from. The caller commits."""
    now = utcnow_naive()
    new_address = False
    if ip != rec.last_used_ip:
        new_address = execute(conn, "INSERT IGNORE INTO api_token_addresses (token_id, ip) VALUES (%s, %s)",
                              (rec.id, ip)) == 1
    elif rec.last_used_at is not None and now - rec.last_used_at < TOUCH_EVERY:
        return False
    execute(conn, "UPDATE api_tokens SET last_used_at = %s, last_used_ip = %s WHERE id = %s", (now, ip, rec.id))
    return new_address
