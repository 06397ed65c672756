"""streaming-svc: the viewer web app (library, watch page, password unlock) and secure
playback: DPoP-bound sessions, ECDH key exchange, per-session manifests naming the shared
ciphertext of the session's A/B codeword variants, per-session init segments with the
metadata tag, paced segment-key release, watermarked downloads of a session, and the
cache-miss origin of /media/."""
from __future__ import annotations

from flask import Flask, request

from svcommon.openapi import init_openapi
from svcommon.service import configure, init_service

from .extensions import api as openapi_spec
from .extensions import db, filestore, playback, reference_cache
from .settings import SETTINGS


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    configure(app, "streaming-svc", SETTINGS, test_config)
    init_service(app, db)
    for ext in (filestore, playback, reference_cache):
        ext.init_app(app)

    from . import (admin_sessions, apidocs, cdn, delivery, downloads, keys, library, pages, security_status,
                   sessions, unlock)
    for mod in (pages, library, unlock, sessions, security_status, keys, delivery, downloads, cdn, admin_sessions,
                apidocs):
        app.register_blueprint(mod.bp)
    init_openapi(app, openapi_spec)

    @app.after_request
    def no_store_stream_api(resp):
        # Sessions, keys, manifests and init segments are per session (wrapped keys, the
        # forensic tag): no cache may keep any of them, refusals included. Only /media/ is public;
        # a storyboard's answers say ``private`` themselves (the viewer's browser only: delivery.py).
        if request.path.startswith("/api/stream/") and not (
                resp.status_code == 200 and resp.headers.get("Cache-Control", "").startswith("private")):
            resp.headers["Cache-Control"] = "no-store"
        return resp
    return app
