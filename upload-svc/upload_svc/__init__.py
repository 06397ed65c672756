"""upload-svc: the upload web app and API — tus resumable uploads and a plain streaming
POST, validation (ffprobe), video metadata, the processing queue, live status (SSE)."""
from __future__ import annotations

from flask import Flask

from svcommon.memory import return_large_buffers
from svcommon.openapi import init_openapi
from svcommon.service import configure, init_service

from .extensions import api as openapi_spec
from .extensions import db, download_slots, filestore, part_buffers, sse_slots, sweep_clock
from .settings import SETTINGS, validate


def create_app(test_config: dict | None = None) -> Flask:
    # No app-wide /static (the gateway sends /static/ to streaming-svc); pages' assets live
    # under the page blueprint's routed prefix.
    app = Flask(__name__, static_folder=None)
    configure(app, "upload-svc", SETTINGS, test_config)
    validate(app.config)
    init_service(app, db)
    return_large_buffers()              # tus parts of 8 MiB from many threads (svcommon.memory)
    for ext in (filestore, sse_slots, download_slots, sweep_clock, part_buffers):
        ext.init_app(app)

    from . import analytics, captions, pages, progress_events, tus, videos
    for mod in (tus, videos, captions, progress_events, pages, analytics):
        app.register_blueprint(mod.bp)
    init_openapi(app, openapi_spec)

    @app.get("/upload")
    def _slash():
        from flask import redirect
        return redirect("/upload/", 308)

    return app
