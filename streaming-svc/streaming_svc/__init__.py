"""streaming-svc: the viewer web app (library, watch page, password unlock) and secure
playback: DPoP-bound sessions, ECDH key exchange, per-session manifests and AES-256-GCM
segments carrying the session's forensic A/B codeword and metadata tag."""
from __future__ import annotations

from flask import Flask

from svcommon.service import configure, init_service

from .extensions import db, filestore, playback
from .settings import SETTINGS


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    configure(app, "streaming-svc", SETTINGS, test_config)
    init_service(app, db)
    for ext in (filestore, playback):
        ext.init_app(app)

    from . import delivery, library, pages, sessions, unlock
    for mod in (pages, library, unlock, sessions, delivery):
        app.register_blueprint(mod.bp)
    return app
