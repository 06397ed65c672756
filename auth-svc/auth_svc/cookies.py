"""Browser cookies: access JWT and refresh token HttpOnly; the CSRF token readable by our
own pages' JS (double-submit). SameSite keeps them off cross-site requests."""
from __future__ import annotations

import secrets

from flask import current_app, request

from svcommon.auth import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE


def _secure() -> bool:
    # Over HTTPS (the gateway says so in X-Forwarded-Proto) cookies are always Secure.
    return bool(current_app.config.get("COOKIE_SECURE")) or request.is_secure


def set_session_cookies(resp, pair: dict) -> None:
    ttl = int(current_app.config["ACCESS_TOKEN_TTL"])
    resp.set_cookie(ACCESS_COOKIE, pair["access_token"], max_age=ttl, httponly=True, samesite="Lax",
                    secure=_secure(), path="/")
    resp.set_cookie(REFRESH_COOKIE, pair["refresh_token"], max_age=int(current_app.config["REFRESH_TOKEN_TTL"]),
                    httponly=True, samesite="Strict", secure=_secure(), path="/")
    ensure_csrf_cookie(resp, rotate=True)


def ensure_csrf_cookie(resp, rotate: bool = False) -> str:
    token = request.cookies.get(CSRF_COOKIE)
    if rotate or not token:
        token = secrets.token_urlsafe(24)
        resp.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="Strict", secure=_secure(), path="/")
    return token


def csrf_token_for_form() -> str:
    """The token the page embeds; set on the response by ``ensure_csrf_cookie``."""
    from flask import g
    if "csrf_token" not in g:
        g.csrf_token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return g.csrf_token


def clear_session_cookies(resp) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        resp.delete_cookie(name, path="/", samesite="Lax")
