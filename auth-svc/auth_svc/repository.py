"""All of auth-svc's SQL. Functions take a connection; callers own the transaction."""
from __future__ import annotations

from datetime import datetime

from svcommon.db import execute, lock_for_count, query

USER_COLS = "id, username, email, role, disabled, created_at, upload_quota_bytes"


# ---- users -----------------------------------------------------------------------------
def insert_user(conn, uid: str, username: str, email: str, password_hash: str, role: str) -> None:
    execute(conn, "INSERT INTO users (id, username, email, password_hash, role) VALUES (%s, %s, %s, %s, %s)",
            (uid, username, email, password_hash, role))


def user_by_username(conn, username: str) -> dict | None:
    return query(conn, f"SELECT {USER_COLS}, password_hash FROM users WHERE username = %s", (username,), one=True)


def user_by_id(conn, uid: str) -> dict | None:
    return query(conn, f"SELECT {USER_COLS} FROM users WHERE id = %s", (uid,), one=True)


def user_with_hash_by_id(conn, uid: str) -> dict | None:
    return query(conn, f"SELECT {USER_COLS}, password_hash FROM users WHERE id = %s", (uid,), one=True)


def _user_filter(search: str) -> tuple[str, tuple]:
    """Username or email containing ``search`` (LIKE wildcards in it taken literally)."""
    if not search:
        return "", ()
    like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return " WHERE username LIKE %s OR email LIKE %s", (like, like)


# Bytes a user's videos take (or have reserved while uploading): what the quota counts.
USED_BYTES = "(SELECT COALESCE(SUM(v.size_bytes), 0) FROM videos v WHERE v.owner_id = users.id) AS used_bytes"


def list_users(conn, limit: int, offset: int, search: str = "") -> list[dict]:
    where, params = _user_filter(search)
    return query(conn, f"SELECT {USER_COLS}, {USED_BYTES} FROM users{where} ORDER BY created_at LIMIT %s OFFSET %s",
                 (*params, limit, offset))


def user_with_usage(conn, uid: str) -> dict | None:
    return query(conn, f"SELECT {USER_COLS}, {USED_BYTES} FROM users WHERE id = %s", (uid,), one=True)


def count_users(conn, search: str = "") -> int:
    where, params = _user_filter(search)
    return query(conn, f"SELECT COUNT(*) AS n FROM users{where}", params, one=True)["n"]


def count_active_admins(conn) -> int:
    return query(conn, "SELECT COUNT(*) AS n FROM users WHERE role='admin' AND disabled=0", one=True)["n"]


def lock_active_admins(conn) -> int:
    """How many active admins there are, their rows locked until commit (in a new
    transaction: svcommon.db.lock_for_count), so two admins demoting each other at the same
    instant cannot both pass the last-admin check."""
    return lock_for_count(conn, "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0 "
                                "FOR UPDATE", ())["n"]


KEEP = object()   # update_user: leave the quota as it is (None sets it back to the default)


def update_user(conn, uid: str, role: str | None, disabled: bool | None, quota=KEEP) -> None:
    sets, params = [], []
    if role is not None:
        sets.append("role = %s")
        params.append(role)
    if disabled is not None:
        sets.append("disabled = %s")
        params.append(1 if disabled else 0)
    if quota is not KEEP:
        sets.append("upload_quota_bytes = %s")
        params.append(quota)
    sets.append("updated_at = UTC_TIMESTAMP(6)")
    execute(conn, f"UPDATE users SET {', '.join(sets)} WHERE id = %s", (*params, uid))


# ---- refresh tokens ----------------------------------------------------------------------
def insert_refresh(conn, rid: str, token_hash: bytes, user_id: str, family_id: str, expires_at: datetime,
                   ip: str | None, user_agent: str | None) -> None:
    execute(conn, "INSERT INTO refresh_tokens (id, token_hash, user_id, family_id, expires_at, ip, user_agent) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (rid, token_hash, user_id, family_id, expires_at, ip, (user_agent or "")[:512]))


def refresh_for_update(conn, token_hash: bytes) -> dict | None:
    return query(conn, "SELECT id, user_id, family_id, expires_at, rotated_at, revoked_at FROM refresh_tokens "
                       "WHERE token_hash = %s FOR UPDATE", (token_hash,), one=True)


def mark_rotated(conn, rid: str) -> None:
    execute(conn, "UPDATE refresh_tokens SET rotated_at = UTC_TIMESTAMP(6) WHERE id = %s", (rid,))


def revoke_family(conn, family_id: str) -> int:
    return execute(conn, "UPDATE refresh_tokens SET revoked_at = UTC_TIMESTAMP(6) "
                         "WHERE family_id = %s AND revoked_at IS NULL", (family_id,))


def family_of(conn, token_hash: bytes) -> str | None:
    row = query(conn, "SELECT family_id FROM refresh_tokens WHERE token_hash = %s AND revoked_at IS NULL",
                (token_hash,), one=True)
    return row["family_id"] if row else None


def revoke_user_tokens_except(conn, user_id: str, family_id: str) -> int:
    return execute(conn, "UPDATE refresh_tokens SET revoked_at = UTC_TIMESTAMP(6) "
                         "WHERE user_id = %s AND family_id <> %s AND revoked_at IS NULL", (user_id, family_id))


def revoke_user_tokens(conn, user_id: str) -> int:
    return execute(conn, "UPDATE refresh_tokens SET revoked_at = UTC_TIMESTAMP(6) "
                         "WHERE user_id = %s AND revoked_at IS NULL", (user_id,))


def end_playback_sessions(conn, user_id: str, reason: str = "user_disabled") -> int:
    """A user's open playback sessions end at once. 'user_disabled' (an admin disabled the
    account) is a reason streaming-svc answers with 403 account_disabled; any other is a plain
    410 session_ended."""
    return execute(conn, "UPDATE playback_sessions SET ended_at = UTC_TIMESTAMP(6), end_reason = %s "
                         "WHERE user_id = %s AND ended_at IS NULL", (reason, user_id))


def live_sessions_of(conn, user_id: str) -> list[dict]:
    return query(conn, "SELECT s.id, s.video_id, v.title, s.device_id, s.ip, s.user_agent, s.started_at, "
                       "s.last_heartbeat_at FROM playback_sessions s LEFT JOIN videos v ON v.id = s.video_id "
                       "WHERE s.user_id = %s AND s.ended_at IS NULL AND s.expires_at > UTC_TIMESTAMP(6) "
                       "ORDER BY s.started_at DESC LIMIT 100", (user_id,))


def end_playback_session(conn, sid: str, user_id: str, reason: str) -> int:
    return execute(conn, "UPDATE playback_sessions SET ended_at = UTC_TIMESTAMP(6), end_reason = %s "
                         "WHERE id = %s AND user_id = %s AND ended_at IS NULL", (reason, sid, user_id))


# ---- passwords -----------------------------------------------------------------------------
def set_password_hash(conn, uid: str, password_hash: str) -> None:
    execute(conn, "UPDATE users SET password_hash = %s, updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
            (password_hash, uid))


def insert_reset(conn, rid: str, token_hash: bytes, user_id: str, created_by: str, expires_at: datetime) -> None:
    # A new link voids the user's older unused ones.
    execute(conn, "UPDATE password_resets SET used_at = UTC_TIMESTAMP(6) WHERE user_id = %s AND used_at IS NULL",
            (user_id,))
    execute(conn, "INSERT INTO password_resets (id, token_hash, user_id, created_by, expires_at) "
                  "VALUES (%s, %s, %s, %s, %s)", (rid, token_hash, user_id, created_by, expires_at))


RESET_COLS = "id, user_id, expires_at, used_at"


def reset_by_hash(conn, token_hash: bytes) -> dict | None:
    return query(conn, f"SELECT {RESET_COLS} FROM password_resets WHERE token_hash = %s", (token_hash,), one=True)


def reset_for_update(conn, token_hash: bytes) -> dict | None:
    return query(conn, f"SELECT {RESET_COLS} FROM password_resets WHERE token_hash = %s FOR UPDATE",
                 (token_hash,), one=True)


def mark_reset_used(conn, rid: str) -> None:
    execute(conn, "UPDATE password_resets SET used_at = UTC_TIMESTAMP(6) WHERE id = %s", (rid,))


# ---- signing keys ------------------------------------------------------------------------
def signing_keys(conn) -> list[dict]:
    return query(conn, "SELECT kid, private_key_enc, public_jwk, created_at, retired_at FROM signing_keys "
                       "ORDER BY created_at DESC")


def insert_signing_key(conn, kid: str, private_enc: bytes, public_jwk: str) -> None:
    execute(conn, "INSERT INTO signing_keys (kid, private_key_enc, public_jwk) VALUES (%s, %s, %s)",
            (kid, private_enc, public_jwk))


def retire_keys_except(conn, kid: str) -> None:
    execute(conn, "UPDATE signing_keys SET retired_at = UTC_TIMESTAMP(6) WHERE kid <> %s AND retired_at IS NULL",
            (kid,))


def lock_signing_keys(conn) -> None:
    query(conn, "SELECT GET_LOCK('streamvault_signing_keys', 30) AS ok")


def unlock_signing_keys(conn) -> None:
    query(conn, "SELECT RELEASE_LOCK('streamvault_signing_keys') AS ok")


# ---- devices -----------------------------------------------------------------------------
DEVICE_COLS = "id, user_id, jkt, user_agent, screen, timezone, language, first_seen, last_seen, last_ip, revoked_at"


def device_by_key(conn, user_id: str, jkt: str) -> dict | None:
    return query(conn, f"SELECT {DEVICE_COLS} FROM devices WHERE user_id = %s AND jkt = %s", (user_id, jkt), one=True)


def insert_device(conn, did: str, user_id: str, jkt: str, jwk: str, fp: dict, ip: str | None) -> None:
    execute(conn, "INSERT INTO devices (id, user_id, jkt, public_jwk, user_agent, screen, timezone, language, last_ip) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (did, user_id, jkt, jwk, fp["user_agent"], fp["screen"], fp["timezone"], fp["language"], ip))


def touch_device(conn, did: str, fp: dict, ip: str | None) -> None:
    execute(conn, "UPDATE devices SET last_seen = UTC_TIMESTAMP(6), last_ip = %s, user_agent = %s, screen = %s, "
                  "timezone = %s, language = %s WHERE id = %s",
            (ip, fp["user_agent"], fp["screen"], fp["timezone"], fp["language"], did))


def devices_of(conn, user_id: str) -> list[dict]:
    return query(conn, f"SELECT {DEVICE_COLS} FROM devices WHERE user_id = %s ORDER BY last_seen DESC", (user_id,))


def device_by_id(conn, did: str) -> dict | None:
    return query(conn, f"SELECT {DEVICE_COLS} FROM devices WHERE id = %s", (did,), one=True)


def revoke_device(conn, did: str) -> int:
    return execute(conn, "UPDATE devices SET revoked_at = UTC_TIMESTAMP(6) WHERE id = %s AND revoked_at IS NULL",
                   (did,))


def end_device_sessions(conn, did: str, reason: str = "device_revoked") -> int:
    """The device's open playback sessions end at once ('device_revoked': streaming-svc
    answers their next request with 403 device_revoked)."""
    return execute(conn, "UPDATE playback_sessions SET ended_at = UTC_TIMESTAMP(6), end_reason = %s "
                         "WHERE device_id = %s AND ended_at IS NULL", (reason, did))


# ---- login throttling --------------------------------------------------------------------
def throttle_row(conn, scope: str, subject: str) -> dict | None:
    return query(conn, "SELECT failures, window_start, locked_until FROM login_throttle "
                       "WHERE scope = %s AND subject = %s FOR UPDATE", (scope, subject), one=True)


def lock_throttle_rows(conn, keys: list[tuple[str, str]], now: datetime) -> dict[tuple[str, str], dict]:
    """The (scope, subject) counters, locked until commit in the order given (every caller
    gives the same order of scopes). A missing one is made first (no failures, a window from
    ``now``), each in a transaction of its own: a locking read of a missing row, or inserts
    held together, take gap locks, and attempts on neighbouring subjects then deadlock.
    {(scope, subject): {failures, window_start, locked_until}}."""
    for scope, subject in keys:
        execute(conn, "INSERT IGNORE INTO login_throttle (scope, subject, failures, window_start) "
                      "VALUES (%s, %s, 0, %s)", (scope, subject, now))
        conn.commit()
    fresh = {"failures": 0, "window_start": now, "locked_until": None}    # pruned meanwhile
    return {key: throttle_row(conn, *key) or fresh for key in keys}


# Same statement shape as streaming-svc's unlock_failed, on another service's own table
# (other key columns): SQL stays in each service's repository, so it is not shared.
def upsert_throttle(conn, scope: str, subject: str, failures: int, window_start: datetime,
                    locked_until: datetime | None) -> None:
    execute(conn, "INSERT INTO login_throttle (scope, subject, failures, window_start, locked_until) "
                  "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE failures = VALUES(failures), "
                  "window_start = VALUES(window_start), locked_until = VALUES(locked_until)",
            (scope, subject, failures, window_start, locked_until))


def clear_throttle(conn, scope: str, subject: str) -> None:
    execute(conn, "DELETE FROM login_throttle WHERE scope = %s AND subject = %s", (scope, subject))


def refund_throttle(conn, scope: str, subject: str, limit: int, lock_set: datetime | None,
                    lock_before: datetime | None) -> None:
    """One counted failure taken back. The lock goes back to ``lock_before`` if it is still
    the one the refunded attempt set, and goes if another attempt set it on a count that
    included this one and falls below ``limit`` without it."""
    execute(conn, "UPDATE login_throttle SET locked_until = IF(locked_until <=> %s, %s, "
                  "IF(failures - 1 < %s, NULL, locked_until)), failures = GREATEST(failures - 1, 0) "
                  "WHERE scope = %s AND subject = %s",
            (lock_set, lock_before, limit, scope, subject))


def bump_counter(conn, scope: str, subject: str, now: datetime, window_seconds: int) -> dict:
    """Atomically count one more event in a fixed window (a new window once it has passed)."""
    execute(conn, "INSERT INTO login_throttle (scope, subject, failures, window_start) VALUES (%s, %s, 1, %s) "
                  "ON DUPLICATE KEY UPDATE "
                  "failures = IF(window_start < %s - INTERVAL %s SECOND, 1, failures + 1), "
                  "window_start = IF(window_start < %s - INTERVAL %s SECOND, %s, window_start)",
            (scope, subject, now, now, window_seconds, now, window_seconds, now))
    return query(conn, "SELECT failures, window_start FROM login_throttle WHERE scope = %s AND subject = %s",
                 (scope, subject), one=True)


def prune_throttle(conn, scope: str, now: datetime, window_seconds: int, limit: int = 1000) -> int:
    """Forget counters whose window has passed and that lock nothing (any more): such a row
    counts as no row at all, so deleting it changes no decision (index ix_throttle_window)."""
    return execute(conn, "DELETE FROM login_throttle WHERE scope = %s AND window_start < %s - INTERVAL %s SECOND "
                         "AND (locked_until IS NULL OR locked_until < %s) LIMIT %s",
                   (scope, now, window_seconds, now, limit))


# ---- API tokens (svcommon/api_tokens.py verifies them) ----------------------------------
API_TOKEN_COLS = "id, name, scopes, created_at, expires_at, last_used_at, last_used_ip"


def lock_user(conn, uid: str) -> dict | None:
    """The user's row, locked until commit: one token creation of a user at a time (the limit;
    in a new transaction, so the count after it sees every token made: svcommon.db.lock_for_count)."""
    return lock_for_count(conn, f"SELECT {USER_COLS} FROM users WHERE id = %s FOR UPDATE", (uid,))


def count_live_api_tokens(conn, user_id: str) -> int:
    return query(conn, "SELECT COUNT(*) AS n FROM api_tokens WHERE user_id = %s AND revoked_at IS NULL "
                       "AND expires_at > UTC_TIMESTAMP(6)", (user_id,), one=True)["n"]


def insert_api_token(conn, tid: str, user_id: str, token_hash: bytes, name: str, scopes: str,
                     expires_at: datetime) -> None:
    execute(conn, "INSERT INTO api_tokens (id, user_id, token_hash, name, scopes, expires_at) "
                  "VALUES (%s, %s, %s, %s, %s, %s)", (tid, user_id, token_hash, name, scopes, expires_at))


def api_token(conn, tid: str) -> dict | None:
    return query(conn, f"SELECT {API_TOKEN_COLS} FROM api_tokens WHERE id = %s", (tid,), one=True)


def api_tokens_of(conn, user_id: str) -> list[dict]:
    """The user's tokens not revoked (expired ones too, until revoked), newest first."""
    return query(conn, f"SELECT {API_TOKEN_COLS} FROM api_tokens WHERE user_id = %s AND revoked_at IS NULL "
                       "ORDER BY created_at DESC", (user_id,))


def revoke_api_token(conn, tid: str, user_id: str) -> int:
    return execute(conn, "UPDATE api_tokens SET revoked_at = UTC_TIMESTAMP(6) "
                         "WHERE id = %s AND user_id = %s AND revoked_at IS NULL", (tid, user_id))
