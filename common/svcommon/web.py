"""The browser side every app's pages share, kept here once: svclient.js (fetch with the CSRF
header and refresh-on-401), sv.css (the layout, forms and common rules), the page layout
sv_layout.html, the branded error page sv_error.html and one-shot flash messages. Each app
serves the assets under a path the gateway already routes to it."""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, request

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
    "login_required": "Please log in to continue.",
    "device_revoked": "The device has been revoked.",
    "session_ended": "The playback session has been ended.",
    "profile_saved": "Your profile has been saved.",
}


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


def _clear_shown_flash(resp):
    if g.get("sv_flash_shown"):
        resp.delete_cookie(FLASH_COOKIE, path="/", samesite="Lax")
    return resp


def serve_shared_assets(pages_bp: Blueprint, url_prefix: str = "") -> None:
    """Register the shared assets (at <url_prefix>/sv/), the layout templates and the flash
    message on whatever app registers pages_bp, so every app's page blueprint brings them along
    without app wiring. url_prefix must be a path the gateway routes to that app."""
    def register(state) -> None:
        state.app.register_blueprint(Blueprint(
            "svweb", __name__, static_folder="static", static_url_path=url_prefix.rstrip("/") + "/sv",
            template_folder="templates"))
        state.app.context_processor(_flash_context)
        state.app.after_request(_clear_shown_flash)
    pages_bp.record_once(register)
