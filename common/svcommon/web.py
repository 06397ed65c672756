"""The browser side every app's pages share, kept here once: svclient.js (fetch with the CSRF
header and refresh-on-401), sv.css (the header and common rules) and the page layout
sv_layout.html. Each app serves them under a path the gateway already routes to it."""
from __future__ import annotations

from flask import Blueprint


def serve_shared_assets(pages_bp: Blueprint, url_prefix: str = "") -> None:
    """Register the shared assets (at <url_prefix>/sv/) and the layout template on whatever app
    registers pages_bp, so every app's page blueprint brings them along without app wiring."""
    def register(state) -> None:
        state.app.register_blueprint(Blueprint(
            "svweb", __name__, static_folder="static", static_url_path=url_prefix.rstrip("/") + "/sv",
            template_folder="templates"))
    pages_bp.record_once(register)
