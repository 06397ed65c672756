"""The browser side every app's pages share, kept here once: svclient.js (fetch with the CSRF
header and refresh-on-401), sv.css (the layout, forms and common rules), the page layout
sv_layout.html (with the admin console's navigation), the branded error page sv_error.html,
one-shot flash messages, the template filters short_agent, ago and filesize, and the server's
clock for the page's scripts (``sv_server_time_ms``: svclient.js's SV.now()). Each app
serves the assets under a path the gateway already routes to it."""
from __future__ import annotations

import re
import time
from datetime import datetime
from urllib.parse import quote

from flask import Blueprint, current_app, g, redirect, request

from .quota import format_bytes
from .timeutil import utcnow_naive

FLASH_COOKIE = "sv_flash"
# A flash travels as a slug in a short-lived cookie and is shown from this fixed catalogue, so a
# crafted cookie or link can never put text of its own on our pages.
FLASH_MESSAGES = {
    "logged_out": "You have been logged out.",
    "logged_out_everywhere": "You have been signed out on every device.",
    "signed_up": "Welcome to StreamVault: your account is ready.",
    "password_changed": "Your password has been changed; your other sessions were signed out.",
    "password_reset": "Your password has been reset. Log in with the new one.",
    "reset_link_invalid": "That reset link is invalid, used or expired. Ask an administrator for a new one.",
    "device_revoked": "The device has been revoked.",
    "session_ended": "The playback session has been ended.",
    "api_token_revoked": "The API token has been revoked; it no longer works.",
    "user_updated": "The user has been updated.",
}


def attachment(filename: str) -> str:
    """A Content-Disposition that saves the response as ``filename`` (RFC 6266): an ASCII
    fallback with quotes and controls replaced, plus the exact UTF-8 name."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "video"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def flash_redirect(target: str, slug: str, status: int = 303):
    """Redirect and show FLASH_MESSAGES[slug] once on the next page of any app."""
    resp = redirect(target, status)
    resp.set_cookie(FLASH_COOKIE, slug, max_age=120, httponly=True, samesite="Lax",
                    secure=bool(current_app.config.get("COOKIE_SECURE")) or request.is_secure, path="/")
    return resp


def _flash_context() -> dict:
    slug = request.cookies.get(FLASH_COOKIE)
    if slug:
        g.sv_flash_shown = True
    return {"sv_flash": FLASH_MESSAGES.get(slug or "")}


def _server_time_ms() -> int:
    return int(time.time() * 1000)


def _clear_shown_flash(resp):
    if g.get("sv_flash_shown"):
        resp.delete_cookie(FLASH_COOKIE, path="/", samesite="Lax")
    return resp


# (marker, name, where its version follows): checked in order, Chrome-based ones first.
_BROWSERS = (("Edg/", "Edge", "Edg/"), ("OPR/", "Opera", "OPR/"), ("Firefox/", "Firefox", "Firefox/"),
             ("Chrome/", "Chrome", "Chrome/"), ("Safari/", "Safari", "Version/"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def short_agent(ua: str | None) -> str:
    """'Chrome 120 on Linux' from a full User-Agent string (the full one stays in a title)."""
    ua = ua or ""
    found = next((b for b in _BROWSERS if b[0] in ua), None)
    version = re.search(re.escape(found[2]) + r"(\d+)", ua) if found else None
    system = next((name for key, name in _SYSTEMS if key in ua), "")
    label = (found[1] + (f" {version.group(1)}" if version else "")) if found else ""
    if "Headless" in ua:
        label = f"{label} (headless)".strip()
    return (f"{label} on {system}" if label and system else label or system or (ua[:40] or "Unknown"))


def ago(when: datetime | None) -> str:
    """'3 minutes ago' for a naive-UTC time (the exact time goes in the element's title)."""
    if when is None:
        return "never"
    seconds = int((utcnow_naive() - when).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def serve_shared_assets(pages_bp: Blueprint, url_prefix: str = "") -> None:
    """Register the shared assets (at <url_prefix>/sv/), the layout templates and the flash
    message on whatever app registers pages_bp, so every app's page blueprint brings them along
    without app wiring. url_prefix must be a path the gateway routes to that app."""
    def register(state) -> None:
        state.app.register_blueprint(Blueprint(
            "svweb", __name__, static_folder="static", static_url_path=url_prefix.rstrip("/") + "/sv",
            template_folder="templates"))
        state.app.context_processor(_flash_context)
        state.app.add_template_global(_server_time_ms, "sv_server_time_ms")
        state.app.add_template_filter(short_agent)
        state.app.add_template_filter(ago)
        state.app.add_template_filter(format_bytes, "filesize")
        state.app.after_request(_clear_shown_flash)
    pages_bp.record_once(register)
