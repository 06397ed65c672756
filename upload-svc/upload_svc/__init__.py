"""upload-svc: the upload web app and API — tus resumable uploads and a plain streaming
POST, validation (ffprobe), video metadata, the processing queue, live status (SSE)."""
from __future__ import annotations

from flask import Flask

from svcommon.errors import APIError
from svcommon.filestore import FileStoreError
from svcommon.memory import return_large_buffers
from svcommon.openapi import init_openapi
from svcommon.service import configure, init_service

from .extensions import api as openapi_spec
from .extensions import db, download_slots, filestore, sse_slots, sweep_clock
from .settings import SETTINGS, validate


def storage_error(exc: FileStoreError) -> APIError:
    """file-svc down (or auth-svc, for its token) → 503 + Retry-After; a refusal → 502."""
    if exc.unavailable:
        return APIError(503, "storage_unavailable", "storage is temporarily unavailable; please retry shortly",
                        {"Retry-After": "5"})
    return APIError(502, "storage_error", f"storage refused the request: {exc.message}")


def create_app(test_config: dict | None = None) -> Flask:
    # No app-wide /static (the gateway sends /static/ to streaming-svc); pages' assets live
    # under the page blueprint's routed prefix.
    app = Flask(__name__, static_folder=None)
    configure(app, "upload-svc", SETTINGS, test_config)
    validate(app.config)
    init_service(app, db)
    return_large_buffers()              # tus parts of 8 MiB from many threads (svcommon.memory)
    for ext in (filestore, sse_slots, download_slots, sweep_clock):
        ext.init_app(app)

    from . import analytics, captions, pages, progress_events, tus, videos
    for mod in (tus, videos, captions, progress_events, pages, analytics):
        app.register_blueprint(mod.bp)
    init_openapi(app, openapi_spec)

    # The one place a file-svc failure becomes an API answer; views catch FileStoreError
    # only where they answer something else (a missing object → 404, say). Handed on to the
    # APIError handler so it is logged like every other refusal.
    @app.errorhandler(FileStoreError)
    def _storage(exc: FileStoreError):
        return app.handle_user_exception(storage_error(exc))

    @app.get("/upload")
    def _slash():
        from flask import redirect
        return redirect("/upload/", 308)

    return app
