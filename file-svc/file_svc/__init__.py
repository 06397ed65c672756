"""file-svc: The only service that talks to S3. (Health endpoints only until its issue lands.)"""
from __future__ import annotations

from flask import Flask

from svcommon.service import configure, init_service

from .settings import SETTINGS


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    configure(app, "file-svc", SETTINGS, test_config, uses_db=False)
    init_service(app)
    return app
