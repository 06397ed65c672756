"""Access-token verification against auth-svc's published JWKS.

Only ES256 is accepted (``alg`` pinned: no ``none``, no HS/RS confusion). Keys are cached
by ``kid``; an unknown ``kid`` triggers one refetch (rate-limited) so key rotation needs
no restart, while a flood of junk kids cannot hammer auth-svc.

A verified token's claims are remembered (by the exact token string, in svcommon.caches,
at most VERIFIED_MAX, least recently used out first) until it expires: a player sends the
same token with every key request, and parsing plus an ECDSA check cost more than the rest
of such a request. Equivalent to verifying again: keys are only ever added while a process
runs, and the expiry is still checked on every use."""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import jwt
import requests

from .caches import TTLCache

log = logging.getLogger("svcommon.jwks")

ALGORITHM = "ES256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
VERIFIED_MAX = 20000          # remembered tokens per process (~15 MB at most)


class TokenError(Exception):
    """The token is not acceptable; ``reason`` is safe to show."""

    def __init__(self, reason: str, code: str = "invalid_token"):
        super().__init__(reason)
        self.reason = reason
        self.code = code


def http_fetcher(url: str, timeout: float = 3.0) -> Callable[[], dict]:
    def fetch() -> dict:
        resp = requests.get(url, timeout=timeout)
        resp.raise_for_status()
        return resp.json()
    return fetch


class JWKSVerifier:
    def __init__(self, fetch_jwks: Callable[[], dict], issuer: str, audience: str,
                 leeway: int = 5, min_refetch_interval: float = 1.0):
        self._fetch = fetch_jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._min_refetch = min_refetch_interval
        self._keys: dict[str, object] = {}
        self._last_fetch = 0.0
        self._lock = threading.Lock()
        self._verified = TTLCache(0, VERIFIED_MAX)    # (token, audience) -> (valid until, claims)

    def _refresh(self, force: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and self._keys:
                return
            # Forced refetches (an unknown kid) at most once per interval: tokens with made-up
            # kids cost auth-svc one JWKS request a second per process at worst. Kept short
            # because a refetch just before a key rotation leaves the new kid unknown until the
            # interval ends (tokens signed then are refused: a 10 s interval showed that).
            if force and now - self._last_fetch < self._min_refetch:
                return
            self._last_fetch = now
            doc = self._fetch()
            keys = {}
            for jwk in doc.get("keys", []):
                if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "kid" not in jwk:
                    continue
                keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            self._keys = keys

    def key_for(self, kid: str):
        if kid not in self._keys:
            try:
                self._refresh(force=bool(self._keys))
            except Exception as exc:  # auth-svc unreachable: fail closed
                log.warning("jwks fetch failed", extra={"error": str(exc)})
                raise TokenError("signing keys unavailable", "jwks_unavailable") from exc
        key = self._keys.get(kid)
        if key is None:
            raise TokenError("token signed with an unknown key")
        return key

    def verify(self, token: str, audience: str | None = None) -> dict:
        hit = self._verified.get((token, audience))
        if hit is not None and time.time() < hit[0]:
            return dict(hit[1])
        claims = self._verify(token, audience)
        valid_until = float(claims["exp"]) + self.leeway
        self._verified.put((token, audience), (valid_until, claims), valid_until - time.time())
        return dict(claims)

    def _verify(self, token: str, audience: str | None) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenError("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        key = self.key_for(kid)
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience or self.audience,
                              issuer=self.issuer, leeway=self.leeway,
                              options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired", "token_expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"token rejected: {exc}") from exc


def static_fetcher(doc: dict) -> Callable[[], dict]:
    return lambda: json.loads(json.dumps(doc))
