"""Extensions created unbound, attached in create_app (flaskr style)."""
from svcommon.appext import PerApp
from svcommon.db import Database
from svcommon.openapi import service_spec

from .signing_keys import KeyRing

db = Database()
# The signing keys this app issues and verifies tokens with (loaded on the first request).
keyring = PerApp("auth.keyring", lambda cfg: KeyRing(cfg["AUTH_KEY_ENCRYPTION_SECRET"], int(cfg["ACCESS_TOKEN_TTL"])))

# The OpenAPI document of auth-svc's public API (svcommon.openapi), attached in create_app.
api = service_spec("auth-svc", "accounts, tokens, API tokens, devices, admin users")
