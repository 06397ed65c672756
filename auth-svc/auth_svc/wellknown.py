"""Published signing keys and service-to-service tokens."""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

from svcommon import security_events
from svcommon.db import DatabaseError, unavailable
from svcommon.errors import APIError
from svcommon.timeutil import iso
from svcommon.openapi import PUBLIC, responses, validate_as

from . import tokens
from .extensions import api, db, keyring
from . import schemas as S

bp = Blueprint("wellknown", __name__)

SERVICE_AUDIENCE = "streamvault-internal"


@bp.get("/.well-known/jwks.json")
@api.validate(resp=responses({"HTTP_200": S.Jwks}), tags=["auth"], security=PUBLIC)
def jwks():
    # Read afresh (at most once a second): verifiers ask at start and for a kid they do not
    # know, so after a rotation by another worker or replica a token signed with the new key
    # may be checked before this worker's 30-s view of signing_keys lists it.
    ring = keyring()
    try:
        ring.reload_if_older(db.conn(), 1.0)
    except DatabaseError as exc:
        # Database down: the keys this worker read last still verify what it could sign
        # (a rotation needs the database too), so verifiers keep working meanwhile.
        if not (unavailable(exc) and ring.jwks()["keys"]):
            raise
    resp = jsonify(ring.jwks())
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp


@bp.post("/api/auth/service-token")
def service_token():
    """Client-credentials for our own services: ``{service, secret}`` → a 5-minute token with
    audience streamvault-internal (file-svc accepts only those)."""
    asked = validate_as(S.ServiceCredentials, request.get_json(silent=True))
    service, secret = asked.service, asked.secret
    expected = current_app.config.get(f"SERVICE_SECRET_{service.upper()}", "") if service.isalpha() else ""
    if not expected or not hmac.compare_digest(expected.encode(), secret.encode()):
        security_events.record("bad_service_credentials", f"service={service[:32]!r}")
        raise APIError(401, "invalid_client", "unknown service or wrong secret")
    token, exp = tokens.issue_access_token({"id": f"svc:{service}", "username": service, "role": "service"},
                                           audience=SERVICE_AUDIENCE)
    return jsonify(access_token=token, token_type="Bearer", expires_at=iso(exp))
