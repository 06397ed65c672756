"""All SQL of streaming-svc. Times are naive UTC datetimes (connections run at +00:00)."""
from __future__ import annotations

from datetime import datetime, timedelta

from svcommon.db import JsonRow, call, execute, lock_for_count, query
from svcommon.dpop import ReplayEntry
from svcommon.timeutil import utcnow_naive

VIDEO_COLS = ("v.id, v.owner_id, v.title, v.description, v.visibility, v.password_hash, v.status, "
              "v.status_message, v.duration, v.width, v.height, v.thumbnail_key, v.views, v.created_at, "
              "v.downloads_allowed")


# ---- videos ----------------------------------------------------------------------------------
def video_by_id(conn, video_id: str):
    """None for a video being deleted, too (upload-svc marks it 'deleting' first)."""
    return query(conn, f"SELECT {VIDEO_COLS} FROM videos v WHERE v.id = %s AND v.status <> 'deleting'",
                 (video_id,), one=True)


def uploader_name(conn, owner_id: str) -> str | None:
    row = query(conn, "SELECT username FROM users WHERE id = %s", (owner_id,), one=True)
    return row["username"] if row else None


def lock_video_status(conn, video_id: str) -> str | None:
    """Share-lock the video row before inserting a row that points at it, and say its
    status (None: gone or being deleted). A delete's 'deleting' mark and its row deletion
    then wait for our commit (and take the new row with them) instead of our insert
    failing its foreign key."""
    row = query(conn, "SELECT status FROM videos WHERE id = %s LOCK IN SHARE MODE", (video_id,), one=True)
    return None if row is None or row["status"] == "deleting" else row["status"]


def _library_where(user_id: str, is_admin: bool, q: str):
    where = ["v.status = 'ready'"]
    params: list = []
    if not is_admin:
        where.append("(v.visibility IN ('public', 'password') OR v.owner_id = %s)")
        params.append(user_id)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(v.title LIKE %s OR v.description LIKE %s)")
        params += [like, like]
    return " AND ".join(where), params


def library(conn, user_id: str, is_admin: bool, q: str, limit: int, offset: int):
    where, params = _library_where(user_id, is_admin, q)
    total = query(conn, f"SELECT COUNT(*) AS n FROM videos v WHERE {where}", tuple(params), one=True)["n"]
    rows = query(conn, f"SELECT {VIDEO_COLS}, g.expires_at AS grant_expires, m.duration AS media_duration "
                       "FROM videos v LEFT JOIN video_media m ON m.video_id = v.id "
                       "LEFT JOIN video_access_grants g ON g.video_id = v.id AND g.user_id = %s "
                       "AND g.expires_at > UTC_TIMESTAMP(6) "
                       f"WHERE {where} ORDER BY v.ready_at DESC, v.created_at DESC, v.id LIMIT %s OFFSET %s",
                 (user_id, *params, limit, offset))
    return total, rows


def media_of(conn, video_id: str):
    """The published media and its storyboard's geometry (``storyboard`` None: none yet)."""
    return query(conn, "SELECT m.segment_count, m.duration, m.metadata, s.metadata AS storyboard FROM video_media m "
                       "LEFT JOIN video_storyboards s ON s.video_id = m.video_id WHERE m.video_id = %s",
                 (video_id,), one=True)


def content_secret(conn, video_id: str):
    """The sealed content secret and the delivery format (1: plaintext, not yet converted)."""
    return query(conn, "SELECT content_secret_enc, delivery_version FROM video_media WHERE video_id = %s",
                 (video_id,), one=True)


def captions_of(conn, video_id: str) -> list[dict]:
    """The video's caption tracks (upload-svc captions.py), as its sessions' manifests list them."""
    return query(conn, "SELECT id, lang, label FROM video_captions WHERE video_id = %s ORDER BY lang", (video_id,))


def caption_key(conn, video_id: str, caption_id: str) -> str | None:
    row = query(conn, "SELECT object_key FROM video_captions WHERE id = %s AND video_id = %s",
                (caption_id, video_id), one=True)
    return row["object_key"] if row else None


def video_exists(conn, video_id: str) -> bool:
    """Not gone and not being deleted (a delete marks the row before removing the objects)."""
    return query(conn, "SELECT 1 AS ok FROM videos WHERE id = %s AND status <> 'deleting'",
                 (video_id,), one=True) is not None


# ---- password grants and throttling ----------------------------------------------------------
def has_grant(conn, user_id: str, video_id: str) -> bool:
    return query(conn, "SELECT 1 AS ok FROM video_access_grants WHERE user_id = %s AND video_id = %s "
                       "AND expires_at > UTC_TIMESTAMP(6)", (user_id, video_id), one=True) is not None


def grant(conn, user_id: str, video_id: str, seconds: int, password_hash: str) -> datetime:
    """Only while the video still has the password that was checked: a password change
    (upload-svc, which deletes the grants in the same transaction) can land during the check."""
    expires = utcnow_naive() + timedelta(seconds=seconds)
    execute(conn, "INSERT INTO video_access_grants (user_id, video_id, granted_at, expires_at) "
                  "SELECT %s, id, UTC_TIMESTAMP(6), %s FROM videos WHERE id = %s AND password_hash = %s "
                  "ON DUPLICATE KEY UPDATE granted_at = UTC_TIMESTAMP(6), expires_at = VALUES(expires_at)",
            (user_id, expires, video_id, password_hash))
    return expires


def ensure_unlock_rows(conn, user_id: str, video_id: str) -> bool:
    """Create the (user, video) and per-video throttle rows before they are locked, in their
    own transaction (the caller commits): concurrent first guesses then queue on row locks
    instead of deadlocking on gap or shared-to-exclusive lock upgrades. False when the
    video is gone or being deleted (nothing inserted: no foreign key to fail)."""
    if lock_video_status(conn, video_id) is None:
        return False
    execute(conn, "INSERT INTO unlock_throttle (user_id, video_id, failures, window_start) "
                  "VALUES (%s, %s, 0, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE failures = failures",
            (user_id, video_id))
    execute(conn, "INSERT INTO unlock_video_throttle (video_id, level, updated_at) "
                  "VALUES (%s, 0, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE level = level", (video_id,))
    return True


def unlock_state(conn, user_id: str, video_id: str, for_update: bool = True):
    return query(conn, "SELECT failures, window_start, locked_until FROM unlock_throttle "
                       "WHERE user_id = %s AND video_id = %s" + (" FOR UPDATE" if for_update else ""),
                 (user_id, video_id), one=True)


# Same statement shape as auth-svc's upsert_throttle, on this service's own table (other key
# columns): SQL stays in each service's repository, so it is not shared.
def unlock_failed(conn, user_id: str, video_id: str, failures: int, window_start: datetime,
                  locked_until: datetime | None) -> None:
    execute(conn, "INSERT INTO unlock_throttle (user_id, video_id, failures, window_start, locked_until) "
                  "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE failures = VALUES(failures), "
                  "window_start = VALUES(window_start), locked_until = VALUES(locked_until)",
            (user_id, video_id, failures, window_start, locked_until))


def unlock_clear(conn, user_id: str, video_id: str) -> None:
    execute(conn, "DELETE FROM unlock_throttle WHERE user_id = %s AND video_id = %s", (user_id, video_id))


def video_bucket(conn, video_id: str) -> dict:
    """The per-video wrong-password bucket, locked (see ensure_unlock_rows)."""
    return query(conn, "SELECT level, updated_at FROM unlock_video_throttle WHERE video_id = %s FOR UPDATE",
                 (video_id,), one=True)


def set_video_bucket(conn, video_id: str, level: float, at: datetime) -> None:
    execute(conn, "UPDATE unlock_video_throttle SET level = %s, updated_at = %s WHERE video_id = %s",
            (level, at, video_id))


def refund_video_bucket(conn, video_id: str) -> None:
    execute(conn, "UPDATE unlock_video_throttle SET level = GREATEST(0, level - 1) WHERE video_id = %s",
            (video_id,))


# ---- accounts ----------------------------------------------------------------------------------
_ACCOUNT_STATE = ("SELECT u.disabled, (d.revoked_at IS NOT NULL OR (%s IS NOT NULL AND d.id IS NULL)) "
                  "AS device_revoked FROM users u LEFT JOIN devices d ON d.id = %s AND d.user_id = u.id WHERE u.id = %s")


def account_state(conn, user_id: str, device_id: str | None) -> dict | None:
    """Access tokens live 5 minutes; a disabled (or deleted) account and a revoked device are
    refused at once: ``{disabled, device_revoked}``, None for no such account. A device-bound
    token whose device is not (or no longer) the user's counts as revoked."""
    return query(conn, _ACCOUNT_STATE, (device_id, device_id, user_id), one=True)


# ---- playback sessions -----------------------------------------------------------------------
SESSION_COLS = ("s.id, s.video_id, s.user_id, s.device_id, s.jkt, s.ip, s.user_agent, s.kek_enc, s.cek_enc, "
                "s.prev_cek_enc, s.key_epoch, s.epoch_started_at, s.codeword_length, s.tag_issued_at, "
                "s.started_at, s.expires_at, s.last_heartbeat_at, s.ended_at, s.end_reason, s.position, "
                "s.counted_view, s.video_key_seconds, s.audio_key_seconds, s.watch_ms, s.startup_ms, s.rebuffer_count, "
                "s.rebuffer_ms, s.bitrate_switches, s.watched_mask, s.viewed_at, s.purpose")
# Read as one JSON column (svcommon.db.JsonRow: 31 column definitions cost the pure-Python
# client more than the statement); the values typed as a plain SELECT of SESSION_COLS gives them.
SESSION_ROW = JsonRow.of(SESSION_COLS, binary=("kek_enc", "cek_enc", "prev_cek_enc"),
                         datetimes=("epoch_started_at", "started_at", "expires_at", "last_heartbeat_at", "ended_at",
                                    "viewed_at"),
                         floats=("position", "video_key_seconds", "audio_key_seconds"))
# The view playback_session_delivery's columns (migration 026), read the same way.
DELIVERY_ROW = JsonRow.of("id, video_id, user_id, jkt, purpose, cek_enc, prev_cek_enc, key_epoch, epoch_started_at, "
                          "tag_issued_at, expires_at, ended_at, end_reason, video_key_seconds, audio_key_seconds, "
                          "video_status, video_owner, lost_reason", binary=("cek_enc", "prev_cek_enc"),
                          datetimes=("epoch_started_at", "expires_at", "ended_at"),
                          floats=("video_key_seconds", "audio_key_seconds"))
# The key release's answer (the procedure writes this object itself: migration 028, 029).
RELEASE_ROW = JsonRow(DELIVERY_ROW.columns + ("charged", "elapsed"), DELIVERY_ROW.binary, DELIVERY_ROW.datetimes,
                      DELIVERY_ROW.floats | {"elapsed"})


def device_summary(conn, device_id: str | None):
    """The device's recorded fingerprint (information only; the binding is its DPoP key)."""
    if not device_id:
        return None
    return query(conn, "SELECT user_agent, screen, timezone, language, first_seen FROM devices WHERE id = %s",
                 (device_id,), one=True)


def lock_user(conn, user_id: str) -> None:
    """Serialises one user's session creations so the concurrent-stream limit holds under races
    (in a new transaction: svcommon.db.lock_for_count)."""
    lock_for_count(conn, "SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))


def live_sessions(conn, user_id: str, at: datetime) -> int:
    """The user's live sessions that can stream (download-only sessions get no keys)."""
    return query(conn, "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s AND ended_at IS NULL "
                       "AND expires_at > %s AND purpose = 'playback'", (user_id, at), one=True)["n"]


def insert_session(conn, row: dict) -> None:
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    execute(conn, f"INSERT INTO playback_sessions ({cols}) VALUES ({marks})", tuple(row.values()))


def session_by_id(conn, session_id: str, for_update: bool = False):
    return SESSION_ROW.one(conn, "FROM playback_sessions s WHERE s.id = %s" + (" FOR UPDATE" if for_update else ""),
                           (session_id,))


# Whether a session's user may still watch: the video's status (410 if not ready), its owner
# (whose own views do not count), and lost_reason, the end reason if the user may no longer
# watch (migration 026's view holds the rule).
ACCESS_COLS = "video_status, video_owner, lost_reason"
_SESSION_ACCESS = (f"{ACCESS_COLS}, v.views AS video_views FROM playback_session_delivery d "
                   "JOIN videos v ON v.id = d.video_id")


def session_access(conn, session_id: str):
    """ACCESS_COLS of a session and its video's view count (``video_views``), without locks
    (the video and user rows are never locked by a heartbeat, so an edit of the video that
    ends its sessions cannot deadlock with one)."""
    return query(conn, f"SELECT {_SESSION_ACCESS} WHERE d.id = %s", (session_id,), one=True)


def account_and_session_access(conn, user_id: str, device_id: str | None, session_id: str):
    """account_state and session_access in one statement (a heartbeat's unlocked reads): None
    for no such account; the session's columns NULL for no such session."""
    return query(conn, "SELECT a.disabled, a.device_revoked, f.video_status, f.video_owner, f.lost_reason, "
                       f"f.video_views FROM ({_ACCOUNT_STATE}) a LEFT JOIN (SELECT {_SESSION_ACCESS} WHERE d.id = %s) f "
                       "ON 1", (device_id, device_id, user_id, session_id), one=True)


def session_for_delivery(conn, session_id: str):
    """The session as manifest, init and key requests see it, with its access facts (migration
    026's view): one indexed lookup per (cached) request."""
    return DELIVERY_ROW.one(conn, "FROM playback_session_delivery WHERE id = %s", (session_id,))


def renew_session(conn, session_id: str, expires_at: datetime, position: float, at: datetime, c=None) -> None:
    """A heartbeat's renewal, with the credited QoE figures of its report (``c``,
    viewing.Credit) in the same statement when it brought one."""
    if c is None:
        execute(conn, "UPDATE playback_sessions SET expires_at = %s, position = %s, last_heartbeat_at = %s "
                      "WHERE id = %s", (expires_at, position, at, session_id))
        return
    execute(conn, "UPDATE playback_sessions SET expires_at = %s, position = %s, last_heartbeat_at = %s, "
                  f"{_QOE_SET} WHERE id = %s", (expires_at, position, at, *_qoe_values(c, at), session_id))


def rotate_epoch(conn, session_id: str, epoch: int, cek_enc: bytes, prev_cek_enc: bytes, at: datetime) -> None:
    execute(conn, "UPDATE playback_sessions SET key_epoch = %s, cek_enc = %s, prev_cek_enc = %s, "
                  "epoch_started_at = %s WHERE id = %s", (epoch, cek_enc, prev_cek_enc, at, session_id))


def release_keys(conn, proof: ReplayEntry, session_id: str, user_id: str, jkt: str, track: str,
                 seconds: float, burst: float, factor: float) -> dict | None:
    """Record the request's DPoP proof and add ``seconds`` to the track's released key-seconds
    if the session is this caller's, open for playback and within burst + factor x seconds
    since it started (migration 026's procedure, one round trip, committed; its answer one
    JSON object since 028, RELEASE_ROW). The session as session_for_delivery gives it, plus
    ``charged`` (1 or 0) and ``elapsed``; None for an unknown session. A replayed proof
    raises IntegrityError."""
    rows = call(conn, "sv_session_key_release",
                (proof.jti_hash, proof.expires_at, session_id, user_id, jkt, track, seconds, burst, factor))
    return RELEASE_ROW.decode(rows[0]["release"]) if rows else None


_QOE_SET = ("watch_ms = %s, startup_ms = %s, rebuffer_count = %s, rebuffer_ms = %s, bitrate_switches = %s, "
            "watched_mask = %s, qoe_reported_at = %s")


def _qoe_values(c, at: datetime) -> tuple:
    return c.watch_ms, c.startup_ms, c.rebuffer_count, c.rebuffer_ms, c.bitrate_switches, c.watched_mask, at


def save_qoe(conn, session_id: str, c, at: datetime) -> None:
    """A session's credited QoE figures (viewing.Credit)."""
    execute(conn, f"UPDATE playback_sessions SET {_QOE_SET} WHERE id = %s", (*_qoe_values(c, at), session_id))


def record_view(conn, session_id: str, video_id: str, user_id: str, at: datetime, repeat_minutes: int) -> bool | None:
    """Decide the session's view: True counted, False a repeat (the viewer's last counted view
    of the video is under ``repeat_minutes`` old), None when another request decided it first
    (the caller rolls back). Rows are locked viewer, video, session: the order an edit of the
    video (video, then its sessions) agrees with."""
    execute(conn, "INSERT IGNORE INTO video_viewers (video_id, user_id, last_view_at) "
                  "VALUES (%s, %s, '1970-01-01')", (video_id, user_id))
    counted = execute(conn, "UPDATE video_viewers SET last_view_at = %s WHERE video_id = %s AND user_id = %s "
                            "AND last_view_at <= %s - INTERVAL %s MINUTE",
                      (at, video_id, user_id, at, repeat_minutes)) == 1
    if counted:
        execute(conn, "UPDATE videos SET views = views + 1 WHERE id = %s", (video_id,))
    if execute(conn, "UPDATE playback_sessions SET viewed_at = %s, counted_view = %s WHERE id = %s "
                     "AND viewed_at IS NULL", (at, int(counted), session_id)) != 1:
        return None
    return counted


def end_session(conn, session_id: str, reason: str, at: datetime) -> int:
    return execute(conn, "UPDATE playback_sessions SET ended_at = %s, end_reason = %s "
                         "WHERE id = %s AND ended_at IS NULL", (at, reason, session_id))


# ---- downloads (downloads.py) ------------------------------------------------------------------
def downloads_since(conn, user_id: str, since: datetime) -> tuple[int, datetime | None]:
    """Download tickets the user was issued since ``since``, and the oldest of them."""
    row = query(conn, "SELECT COUNT(*) AS n, MIN(download_issued_at) AS oldest FROM playback_sessions "
                      "WHERE user_id = %s AND download_issued_at >= %s", (user_id, since), one=True)
    return int(row["n"]), row["oldest"]


def issue_download(conn, session_id: str, ticket_sha256: bytes, rendition: str, at: datetime,
                   expires_at: datetime) -> bool:
    """The session's one download ticket; False if it already had one (a race lost)."""
    return execute(conn, "UPDATE playback_sessions SET download_ticket_sha256 = %s, download_rendition = %s, "
                         "download_issued_at = %s, download_expires_at = %s "
                         "WHERE id = %s AND download_issued_at IS NULL",
                   (ticket_sha256, rendition, at, expires_at, session_id)) == 1


def download_ticket(conn, session_id: str):
    return query(conn, "SELECT s.download_ticket_sha256, s.download_rendition, s.download_expires_at, "
                       "s.download_used_at, s.user_id, s.device_id, s.video_id, s.purpose, v.title, v.downloads_allowed "
                       "FROM playback_sessions s JOIN videos v ON v.id = s.video_id WHERE s.id = %s",
                 (session_id,), one=True)


def claim_download(conn, session_id: str, ticket_sha256: bytes, at: datetime) -> bool:
    """Use the ticket up: True for exactly one request, whatever process or replica."""
    return execute(conn, "UPDATE playback_sessions SET download_used_at = %s WHERE id = %s "
                         "AND download_ticket_sha256 = %s AND download_used_at IS NULL AND download_expires_at > %s",
                   (at, session_id, ticket_sha256, at)) == 1
