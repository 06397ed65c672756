"""watermark-svc: the forensics API and admin pages (the dashboard, trace a leak, security
console), webhooks (API, page, deliveries); the media workers (``python -m watermark_svc.worker``) run the same package
against the job queue."""
from __future__ import annotations

from flask import Flask

from svcommon.openapi import init_openapi
from svcommon.service import configure, init_service

from .extensions import api as openapi_spec
from .extensions import db, filestore
from .settings import SETTINGS


def create_app(test_config: dict | None = None) -> Flask:
    # No app-wide /static (the gateway sends /static/ to streaming-svc); pages' assets live
    # under the page blueprint's routed prefix.
    app = Flask(__name__, static_folder=None)
    configure(app, "watermark-svc", SETTINGS, test_config)
    init_service(app, db)
    filestore.init_app(app)

    from . import admin_pages, dashboard, forensics_api, jobs_admin, security_console, webhook_pages, webhooks_api
    for mod in (forensics_api, admin_pages, dashboard, security_console, jobs_admin, webhooks_api, webhook_pages):
        app.register_blueprint(mod.bp)
    init_openapi(app, openapi_spec)
    return app
