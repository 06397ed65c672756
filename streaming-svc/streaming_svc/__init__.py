"""streaming-svc: Viewer web app and secure playback sessions. (Health endpoints only until its issue lands.)"""
from __future__ import annotations

from flask import Flask

from svcommon.service import configure, init_service

from .extensions import db
from .settings import SETTINGS


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    configure(app, "streaming-svc", SETTINGS, test_config)
    init_service(app, db)
    return app
