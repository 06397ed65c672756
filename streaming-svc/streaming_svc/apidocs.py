"""The public API reference: ``/api/openapi.json`` merges the OpenAPI documents of every public
service (each serves its own at svcommon.openapi.SPEC_PATH on its own port, built from its
code), ``/api/docs`` browses it with Swagger UI (swagger-ui-dist from npm, never a CDN).
Merged here at request time (kept a minute), so the reference is always the running code's."""
from __future__ import annotations

from pathlib import Path

import requests
from flask import Blueprint, current_app, jsonify, render_template, send_from_directory

from svcommon.errors import APIError
from svcommon.openapi import SPEC_PATH, merge_documents

from .extensions import api, reference_cache

bp = Blueprint("apidocs", __name__)

SWAGGER_DIST = Path(__file__).resolve().parents[1] / "node_modules" / "swagger-ui-dist"
SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")
# The services whose public routes the gateway exposes (file-svc is internal: docs/api.md).
PEERS = ("AUTH_SVC_URL", "UPLOAD_SVC_URL", "WATERMARK_SVC_URL")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _peer_document(setting: str) -> dict:
    url = current_app.config[setting].rstrip("/") + SPEC_PATH
    try:
        resp = requests.get(url, timeout=5)
        resp.raise_for_status()
        return resp.json()
    except (requests.RequestException, ValueError) as exc:
        current_app.logger.warning("OpenAPI document of %s unavailable: %s", setting, exc)
        raise APIError(503, "reference_unavailable",
                       "a service's API document could not be read; try again shortly")


def merged_document() -> dict:
    cache = reference_cache()
    merged = cache.get("merged")
    if merged is None:
        merged = merge_documents([api.spec, *(_peer_document(name) for name in PEERS)])
        cache.put("merged", merged)
    return merged


@bp.get("/api/openapi.json")
def openapi_json():
    resp = jsonify(merged_document())
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/api/docs")
def docs_page():
    resp = current_app.make_response(render_template("apidocs.html"))
    resp.headers["Content-Security-Policy"] = CSP
    return resp


@bp.get("/api/docs/vendor/<any(" + ", ".join(f'"{n}"' for n in SWAGGER_ASSETS) + "):name>")
def swagger_asset(name: str):
    if not (SWAGGER_DIST / name).exists():
        raise APIError(500, "missing_asset", "swagger-ui-dist is not installed; run scripts/setup.sh (npm install)")
    return send_from_directory(SWAGGER_DIST, name, max_age=3600)
