"""The player's "Playback security" panel data for one session: state, the device it is bound
to (key thumbprint + the fingerprint recorded at registration), key epochs and the protections
in force (docs/api.md, streaming-svc)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify

from svcommon.auth import Principal
from svcommon.timeutil import iso, utcnow_naive
from svcommon.web import short_agent
from svcommon.openapi import DEVICE_BOUND, SIGNED_IN, responses

from . import access
from . import repository as repo
from .extensions import api, db
from .sessions import owned_session
from . import schemas as S

bp = Blueprint("security_status", __name__, url_prefix="/api/stream/sessions")


@bp.get("/<sid>/security")
@api.validate(resp=responses({"HTTP_200": S.SessionSecurity}, 401, 403, 404), tags=["playback"], security=DEVICE_BOUND + SIGNED_IN)
def security(sid: str):
    conn, cfg = db.conn(), current_app.config
    p = access.active_principal(conn)
    s = owned_session(conn, p, sid)
    now = utcnow_naive()
    live = s["ended_at"] is None and s["expires_at"] > now
    rotation = int(cfg["KEY_ROTATION_SECONDS"])
    return jsonify(
        session_id=sid, video_id=s["video_id"],
        state="live" if live else ("ended" if s["ended_at"] else "expired"),
        device=device_json(repo.device_summary(conn, s["device_id"]), s, p),
        watermark_id=sid,
        started_at=iso(s["started_at"], millis=True), expires_at=iso(s["expires_at"], millis=True),
        ended_at=iso(s["ended_at"], millis=True),
        last_heartbeat_at=iso(s["last_heartbeat_at"], millis=True), key_epoch=s["key_epoch"],
        epoch_started_at=iso(s["epoch_started_at"], millis=True),
        next_rotation_at=iso(s["epoch_started_at"] + timedelta(seconds=rotation), millis=True) if live else None,
        protections={
            "device_binding": "DPoP (RFC 9449): ES256 device key, non-extractable in the browser",
            "key_exchange": "ephemeral ECDH P-256 + HKDF-SHA256, server key discarded (forward secrecy)",
            "content_encryption": "AES-256-GCM, each segment encrypted once at rest under its own key "
                                  "(AAD video:rendition:index); this session receives only its own variants' "
                                  "keys, wrapped under its CEK (AAD session:track:index)",
            "key_release_pacing": {"burst_seconds": float(cfg["KEY_BURST_SECONDS"]),
                                   "pace_factor": float(cfg["KEY_PACE_FACTOR"]),
                                   "released_seconds": {"video": s["video_key_seconds"],
                                                        "audio": s["audio_key_seconds"]}},
            "key_rotation_seconds": rotation,
            "key_grace_seconds": int(cfg["KEY_GRACE_SECONDS"]),
            "session_ttl_seconds": int(cfg["SESSION_TTL_SECONDS"]),
            "concurrent_stream_limit": int(cfg["MAX_CONCURRENT_STREAMS"]),
            "forensic_watermark": {"ab_codeword": True, "codeword_length": s["codeword_length"],
                                   "metadata_tag": True},
        })


def device_json(d: dict | None, s: dict, p: Principal) -> dict:
    """The session's device: its key (the binding) and the fingerprint recorded at registration."""
    out = {"id": s["device_id"], "key_thumbprint": s["jkt"], "bound": True, "this_device": p.jkt == s["jkt"],
           "name": short_agent(d["user_agent"]) if d else None}
    for col in ("screen", "timezone", "language"):
        out[col] = d[col] if d else None
    out["first_seen_at"] = iso(d["first_seen"], millis=True) if d else None
    return out
