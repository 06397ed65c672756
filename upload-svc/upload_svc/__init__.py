"""upload-svc: the upload web app and API — tus resumable uploads and a plain streaming
POST, validation (ffprobe), video metadata, the processing queue, live status (SSE)."""
from __future__ import annotations

from flask import Flask

from svcommon.errors import error_response
from svcommon.filestore import FileStoreError
from svcommon.service import configure, init_service

from .extensions import db, init_filestore
from .settings import SETTINGS, validate


def _sweep_expired_uploads_now_and_then(app: Flask) -> None:
    """Abandoned uploads are swept when new ones are created, at most once a minute per
    process: no cron job to deploy, and the sweep cost lands on uploaders, not viewers."""
    import time
    from flask import request
    from . import ingest
    last = [0.0]

    @app.before_request
    def _sweep():
        if request.method == "POST" and request.path == "/api/uploads" and time.monotonic() - last[0] > 60:
            last[0] = time.monotonic()
            ingest.sweep_expired()


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    configure(app, "upload-svc", SETTINGS, test_config)
    validate(app.config)
    init_service(app, db)
    init_filestore(app)

    from . import events, ingest, pages, streams, tus, videos
    for mod in (tus, videos, events, pages):
        app.register_blueprint(mod.bp)
    streams.init_app(app)

    _sweep_expired_uploads_now_and_then(app)

    @app.errorhandler(FileStoreError)
    def _storage(exc: FileStoreError):
        err = ingest.storage_error(exc)
        return error_response(err.status, err.code, err.message, err.headers)

    @app.get("/upload")
    def _slash():
        from flask import redirect
        return redirect("/upload/", 308)

    return app
