"""The upload web app: one page (login required) plus its script, styles and the
tus-js-client build installed from npm by the setup step (served, never committed)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template, send_from_directory

from svcommon.auth import current_principal, page_login_required
from svcommon.errors import APIError
from svcommon.ffmpeg import ACCEPTED_CONTAINERS, SNIFF_BYTES
from svcommon.quota import format_bytes
from svcommon.web import serve_shared_assets

bp = Blueprint("pages", __name__, url_prefix="/upload", static_folder="static", static_url_path="/static")
serve_shared_assets(bp, "/upload")

TUS_DIST = Path(__file__).resolve().parents[1] / "node_modules" / "tus-js-client" / "dist"


@bp.get("/")
@page_login_required
def dashboard():
    p = current_principal()
    cfg = current_app.config
    may_upload = not cfg["UPLOADS_REQUIRE_ROLE"] or p.role in ("uploader", "admin")
    resp = current_app.make_response(render_template(
        "upload.html", user=p, may_upload=may_upload, chunk_size=int(cfg["TUS_CHUNK_SIZE"]), first_chunk=SNIFF_BYTES,
        max_bytes=int(cfg["UPLOAD_MAX_BYTES"]), max_size=format_bytes(int(cfg["UPLOAD_MAX_BYTES"])),
        containers=ACCEPTED_CONTAINERS))
    # Content-Security-Policy: svcommon.headers' page default (own assets only, no framing).
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/vendor/tus.min.js")
def tus_client():
    if not (TUS_DIST / "tus.min.js").exists():
        raise APIError(500, "missing_asset", "tus-js-client is not installed; run scripts/setup.sh (npm install)")
    resp = send_from_directory(TUS_DIST, "tus.min.js", mimetype="text/javascript", max_age=3600)
    return resp
