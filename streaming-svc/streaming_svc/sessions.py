"""Playback sessions (docs/api.md, streaming-svc): open with one ECDH round trip, heartbeat
(renewal + key-epoch rotation; the player's QoE report and the view decision: viewing.py) and
end (with the final report; security_status.py has the player's security panel data). Every call
needs a device-bound token and a fresh DPoP proof from that device's key; the session is
bound to that key (jkt), so a stolen token or session id is useless on another device."""
from __future__ import annotations

import uuid
from datetime import timedelta, timezone

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, current_app, jsonify, request

from svcommon import auth, security_events
from svcommon.auth import Principal
from svcommon.dpop import sweep_replay_store
from svcommon.errors import APIError
from svcommon.timeutil import iso, utcnow_naive
from svcommon.openapi import DEVICE_BOUND, responses, validate_as, validated_json

from . import access, pacing, session_crypto, viewing
from . import repository as repo
from .content import content_of
from .live import base_url, media_duration, media_of, media_or_none
from .manifest import STORYBOARD_VTT
from .extensions import api, db, playback
from . import schemas as S

bp = Blueprint("sessions", __name__, url_prefix="/api/stream/sessions")


@bp.post("")
@api.validate(json=S.OpenSession, resp=responses({"HTTP_201": S.Session}, 400, 401, 403, 404, 409, 429, 503), tags=["playback"], security=DEVICE_BOUND)
def open_session():
    auth.defer_proof_record()          # recorded with the session: no commit of its own
    p = access.device_principal()
    asked: S.OpenSession = validated_json()
    video_id = asked.video_id
    conn = db.conn()
    video = access.playable_video(conn, p, video_id)
    media = media_of(conn, video_id)
    content = content_of(conn, media)       # 503 media_converting for a video not yet converted
    sid = uuid.uuid4().hex
    try:
        hs = session_crypto.open_session(asked.client_public_key, sid)
    except session_crypto.KeyExchangeError as exc:
        raise APIError(400, "invalid_public_key", str(exc))
    cfg, master = current_app.config, playback().master
    now = utcnow_naive()
    expires = now + timedelta(seconds=int(cfg["SESSION_TTL_SECONDS"]))
    for_download = asked.purpose == "download"
    repo.lock_user(conn, p.user_id)
    live = repo.live_sessions(conn, p.user_id, now)
    limit = int(cfg["MAX_CONCURRENT_STREAMS"])
    if live >= limit and not for_download:       # a download session cannot stream: not counted
        conn.rollback()
        security_events.record("stream_limit", f"{live} live sessions (limit {limit}), video {video_id}", p.user_id)
        raise APIError(429, "stream_limit", stream_limit_message(live, limit, int(cfg["SESSION_TTL_SECONDS"])),
                       {"Retry-After": "30"})
    if repo.lock_video_status(conn, video["id"]) != "ready":
        conn.rollback()
        raise access.gone_meanwhile()
    first, charged = ({"key_epoch": 0, "video": [], "audio": []}, {"video": 0.0, "audio": 0.0}) if for_download \
        else pacing.first_keys(sid, AESGCM(hs.cek), media, content)           # no key request to start
    proof = auth.record_claimed_proof(conn, p.user_id)      # a replay: rolled back, 401
    repo.insert_session(conn, {
        "id": sid, "video_id": video["id"], "user_id": p.user_id, "device_id": p.device_id, "jkt": p.jkt,
        "ip": (request.remote_addr or "")[:64], "user_agent": request.headers.get("User-Agent", "")[:512],
        "kek_enc": master.seal(hs.kek, sid, "kek"), "cek_enc": master.seal(hs.cek, sid, "cek:0"),
        "key_epoch": 0, "epoch_started_at": now, "codeword_length": media.segment_count,
        "tag_issued_at": int(now.replace(tzinfo=timezone.utc).timestamp()),
        "started_at": now, "expires_at": expires, "video_key_seconds": charged["video"],
        "audio_key_seconds": charged["audio"], "purpose": asked.purpose})
    conn.commit()
    sweep_replay_store(conn, proof)
    base = base_url(sid)
    return jsonify(session_id=sid, server_public_key=hs.server_public_key, wrapped_cek=hs.wrapped_cek,
                   key_epoch=0, expires_at=iso(expires, millis=True), manifest_url=base + "manifest.mpd",
                   hls_url=base + "master.m3u8", storyboard_url=base + STORYBOARD_VTT if media.storyboard else None,
                   heartbeat_interval=int(cfg["HEARTBEAT_SECONDS"]), keys=first,
                   view_after_seconds=int(cfg["VIEW_MIN_WATCH_SECONDS"]),
                   video={"id": video["id"], "title": video["title"], "duration": media.duration}), 201


def stream_limit_message(live: int, limit: int, ttl_seconds: int) -> str:
    """What the player's overlay says (the session of a closed tab ends with it; a crashed
    browser's times out after the TTL)."""
    wait = f"{-(-ttl_seconds // 60)} minute{'s' if ttl_seconds > 60 else ''}"
    return (f"You're watching on {live} other {'device' if live == 1 else 'devices'} — stop one, or wait up to "
            f"{wait} for it to time out (the limit is {limit} at once).")


def owned_session(conn, p: Principal, sid: str, for_update: bool = False) -> dict:
    s = repo.session_by_id(conn, sid, for_update) if len(sid) == 32 else None
    if s is None or (s["user_id"] != p.user_id and not p.is_admin):
        raise APIError(404, "not_found", "no such playback session")
    if p.via == "dpop" and s["user_id"] == p.user_id and s["jkt"] != p.jkt:
        security_events.record("session_device_mismatch", f"session {sid} used from another device key", p.user_id)
        raise APIError(403, "wrong_device", "This playback session belongs to another device.")
    return s


def ensure_live(s: dict, now) -> None:
    if s["ended_at"] is not None:
        if s["end_reason"] in access.REVOKED:       # ended by a password/visibility change or a disabled user
            raise access.revoked_error(s["end_reason"])
        raise APIError(410, "session_ended", "This playback session has ended.")
    if s["expires_at"] <= now:
        raise APIError(410, "session_expired", "This playback session expired; start playback again.")


@bp.post("/<sid>/heartbeat")
@api.validate(json=S.Heartbeat, resp=responses({"HTTP_200": S.HeartbeatAnswer}, 400, 401, 403, 404, 410), tags=["playback"], security=DEVICE_BOUND)
def heartbeat(sid: str):
    # Round trips: the account check with the session's access facts (and the view count,
    # unlocked), the session locked, then the proof record, the renewal (with the QoE report)
    # and ONE commit; the view decision, rarely, in its own transaction after it.
    auth.defer_proof_record()       # recorded with the renewal: no commit of its own
    p = access.device_principal(account_checked_by_session=True)
    beat: S.Heartbeat = validated_json()
    position, report = beat.position, beat.qoe
    conn, cfg, master = db.conn(), current_app.config, playback().master
    facts = repo.account_and_session_access(conn, p.user_id, p.device_id, sid)
    access.check_account(p, facts)
    s = owned_session(conn, p, sid, for_update=True)
    now = utcnow_naive()
    ensure_live(s, now)
    if facts["video_status"] != "ready":
        repo.end_session(conn, sid, "video_unavailable", now)
        conn.commit()
        raise APIError(410, "video_unavailable", "This video is no longer available to you.")
    lost = facts["lost_reason"]   # the password or visibility changed since the session opened
    if lost:
        repo.end_session(conn, sid, lost, now)
        conn.commit()
        playback().sessions.drop(sid)
        security_events.record("session_access_revoked", f"session {sid} of video {s['video_id']} ended: {lost}",
                      s["user_id"])
        raise access.revoked_error(lost)
    proof = auth.record_claimed_proof(conn, p.user_id)      # a replay: rolled back, 401
    expires = now + timedelta(seconds=int(cfg["SESSION_TTL_SECONDS"]))
    media = media_or_none(conn, s["video_id"])
    credit = viewing.credit(s, report, media and media.duration, now) if report else None
    repo.renew_session(conn, sid, expires, float(position), now, credit)
    watch_ms = credit.watch_ms if credit else s["watch_ms"]
    # renditions and storyboard_url: what a fresh manifest lists (a player that started while
    # higher rungs were encoding loads it again to offer them: player.js offerNewRungs; the
    # storyboard, made after the ladder, it adds as a thumbnails track: offerStoryboard)
    out = {"expires_at": iso(expires, millis=True), "key_epoch": s["key_epoch"],
           "heartbeat_interval": int(cfg["HEARTBEAT_SECONDS"]), "renditions": list(media.renditions) if media else [],
           "storyboard_url": base_url(sid) + STORYBOARD_VTT if media and media.storyboard else None}
    if (now - s["epoch_started_at"]).total_seconds() >= int(cfg["KEY_ROTATION_SECONDS"]):
        epoch = s["key_epoch"] + 1
        cek = session_crypto.new_cek()
        repo.rotate_epoch(conn, sid, epoch, master.seal(cek, sid, f"cek:{epoch}"), s["cek_enc"], now)
        out.update(key_epoch=epoch, wrapped_cek=session_crypto.wrap_cek(master.open(s["kek_enc"], sid, "kek"), cek, sid))
    conn.commit()
    sweep_replay_store(conn, proof)
    playback().sessions.drop(sid)
    counted, views = bool(s["counted_view"]), int(facts["video_views"])
    if viewing.reaches_view(s, facts["video_owner"], watch_ms):
        counted = viewing.decide_view(conn, s, now)
        views += counted                # this heartbeat's own view, counted after the facts were read
    out.update(views=views, view_counted=counted)
    return jsonify(out)


@bp.delete("/<sid>")
@api.validate(json=S.EndSession, resp=responses({"HTTP_204": None}, 400, 401, 403, 404, 410), tags=["playback"], security=DEVICE_BOUND)
def end(sid: str):
    """Ends the session; an optional body ``{"qoe": …}`` is the player's final report (sent
    with ``fetch(…, {keepalive: true})`` when the page goes away)."""
    p = access.device_principal()
    # (spectree reads no DELETE body: the model checks it here)
    report = validate_as(S.EndSession, request.get_json(silent=True), not_an_object="invalid_input").qoe \
        if request.content_length else None
    conn = db.conn()
    s = owned_session(conn, p, sid, for_update=True)
    now = utcnow_naive()
    facts = repo.session_access(conn, sid) if report and s["ended_at"] is None else None
    if facts:
        watch_ms = viewing.record_report(conn, s, report, media_duration(conn, s["video_id"]), now)
    repo.end_session(conn, sid, "ended_by_client", now)
    conn.commit()
    playback().sessions.drop(sid)
    if facts and facts["video_status"] == "ready" and viewing.reaches_view(s, facts["video_owner"], watch_ms):
        viewing.decide_view(conn, s, now)
    return "", 204
