"""Browser-facing security headers on every HTML response of every service (wired by
``service.init_service``): a Content-Security-Policy that allows only the page's own
assets and no framing (clickjacking), and ``X-Frame-Options: DENY`` for old browsers.
A page that needs more (the player: blob: media and workers) sets its own CSP; it still
gets ``frame-ancestors 'none'`` if it lacks one. (``nosniff`` and ``Referrer-Policy``
come from the gateway, on every response.)"""
from __future__ import annotations

from flask import Flask

PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def apply(resp):
    if resp.mimetype == "text/html":
        csp = resp.headers.get("Content-Security-Policy")
        if not csp:
            resp.headers["Content-Security-Policy"] = PAGE_CSP
        elif "frame-ancestors" not in csp:
            resp.headers["Content-Security-Policy"] = csp.rstrip("; ") + "; frame-ancestors 'none'"
        resp.headers.setdefault("X-Frame-Options", "DENY")
    return resp


def init_app(app: Flask) -> None:
    app.after_request(apply)
