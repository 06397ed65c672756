"""Who is calling file-svc: only our own services, with a short-lived service token from
auth-svc (audience ``streamvault-internal``, subject ``svc:<name>``) verified locally
against the JWKS. User tokens, whatever their role, are refused."""
from __future__ import annotations

from flask import g, request

from svcommon import security_events
from svcommon.auth import verifier
from svcommon.errors import APIError
from svcommon.jwks import TokenError

from .object_keys import PERMISSIONS, authorize

SERVICE_AUDIENCE = "streamvault-internal"


def _unauthorized(reason: str) -> APIError:
    return APIError(401, "unauthorized", reason, {"WWW-Authenticate": 'Bearer realm="file-svc"'})


def authenticate() -> str:
    """The calling service's name; sets ``g.caller``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("a service token is required (Authorization: Bearer <token>)")
    try:
        claims = verifier().verify(token.strip(), audience=SERVICE_AUDIENCE)
    except TokenError as exc:
        security_events.record("bad_service_token", exc.reason)
        raise _unauthorized(f"service token refused: {exc.reason}")
    sub = str(claims.get("sub", ""))
    name = sub[4:] if sub.startswith("svc:") else ""
    if claims.get("role") != "service" or name not in PERMISSIONS:
        security_events.record("bad_service_token", f"not a known service: {sub[:40]!r}")
        raise APIError(403, "forbidden", "only StreamVault services may use file-svc")
    g.caller = name
    return name


def require(op: str, key_or_prefix: str) -> str:
    name = g.get("caller") or authenticate()
    authorize(name, op, key_or_prefix)
    return name
