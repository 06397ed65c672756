"""Device-bound tokens (RFC 9449 DPoP) and the caller's device list."""
from __future__ import annotations

import json
import uuid

from flask import Blueprint, jsonify, request

from svcommon import security_events
from svcommon.auth import dpop_proof_for_request, require_principal
from svcommon.db import IntegrityError
from svcommon.errors import APIError
from svcommon.jwks import TokenError
from svcommon.timeutil import iso
from svcommon.openapi import SIGNED_IN, responses, validated_json

from . import repository as repo
from . import accounts, tokens
from .extensions import api, db
from . import schemas as S

bp = Blueprint("devices", __name__)

def _device_json(d: dict) -> dict:
    return {"id": d["id"], "user_agent": d["user_agent"], "screen": d["screen"], "timezone": d["timezone"],
            "language": d["language"], "first_seen": iso(d["first_seen"]), "last_seen": iso(d["last_seen"]),
            "last_ip": d["last_ip"], "revoked": d["revoked_at"] is not None}


@bp.post("/api/auth/device-token")
@api.validate(json=S.DeviceTokenRequest, resp=responses({"HTTP_200": S.DeviceToken}, 400, 401, 403, 409), tags=["devices"], security=SIGNED_IN)
def device_token():
    """A token bound to the key that signed the DPoP proof. The caller is the account session
    (bearer or cookie), or a device token renewing itself: then authentication has already
    verified this very proof against the token's key (verified once: it is single-use), and
    a device token can never obtain a token for another key."""
    p = require_principal()
    fp = validated_json().fingerprint.model_dump()
    try:
        proof = dpop_proof_for_request()
    except TokenError as exc:
        security_events.record("dpop_replay" if exc.code == "dpop_replay" else "bad_proof", exc.reason, p.user_id)
        raise APIError(401, exc.code, exc.reason, {"WWW-Authenticate": 'DPoP error="invalid_dpop_proof"'})
    if p.jkt is not None and proof["jkt"] != p.jkt:
        security_events.record("device_key_mismatch", "a device token asked for a token bound to another key", p.user_id)
        raise APIError(403, "account_session_required",
                       "a device token can only renew itself; registering another key needs the account session")
    conn = db.conn()
    user = repo.user_by_id(conn, p.user_id)
    if user is None or user["disabled"]:
        raise APIError(401, "account_disabled", "account is disabled or gone")
    device = repo.device_by_key(conn, p.user_id, proof["jkt"])
    if device is not None and device["revoked_at"] is not None:
        security_events.record("revoked_device", "token requested for a revoked device", p.user_id)
        raise APIError(403, "device_revoked", "this device was revoked; clear the site data to register anew")
    if device is None:
        did = uuid.uuid4().hex
        try:
            repo.insert_device(conn, did, p.user_id, proof["jkt"], json.dumps(proof["jwk"]), fp, request.remote_addr)
        except IntegrityError:
            conn.rollback()
            raise APIError(409, "conflict", "device registered concurrently; retry")
    else:
        did = device["id"]
        repo.touch_device(conn, did, fp, request.remote_addr)
    conn.commit()
    token, exp = tokens.issue_access_token(user, cnf_jkt=proof["jkt"], device_id=did)
    return jsonify(access_token=token, token_type="DPoP", expires_at=iso(exp), device_id=did)


@bp.get("/api/devices")
@api.validate(resp=responses({"HTTP_200": S.DeviceList}, 401, 403), tags=["devices"], security=SIGNED_IN)
def list_devices():
    p = require_principal()
    return jsonify(devices=[_device_json(d) for d in repo.devices_of(db.conn(), p.user_id)], current=p.device_id)


@bp.delete("/api/devices/<device_id>")
@api.validate(resp=responses({"HTTP_204": None}, 401, 403, 404), tags=["devices"], security=SIGNED_IN)
def revoke_device(device_id: str):
    p = require_principal()
    accounts.revoke_device(device_id, owner_id=p.user_id)
    return "", 204


@bp.delete("/api/admin/devices/<device_id>")
@api.validate(resp=responses({"HTTP_200": S.Device}, 401, 403, 404, 409), tags=["admin"], security=SIGNED_IN)
def admin_revoke_device(device_id: str):
    """Any user's device, for an administrator (the security console's action)."""
    admin = require_principal(roles=("admin",))
    return jsonify(_device_json(accounts.revoke_device(device_id, admin_id=admin.user_id)))
