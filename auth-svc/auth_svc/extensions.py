"""Extensions created unbound, attached in create_app (flaskr style)."""
from svcommon.appext import PerApp
from svcommon.db import Database

from .signing_keys import KeyRing

db = Database()
# The signing keys this app issues and verifies tokens with (loaded on the first request).
keyring = PerApp("auth.keyring", lambda cfg: KeyRing(cfg["AUTH_KEY_ENCRYPTION_SECRET"], int(cfg["ACCESS_TOKEN_TTL"])))
