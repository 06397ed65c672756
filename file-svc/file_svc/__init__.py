"""file-svc: the only service that talks to S3. Internal only (the gateway never routes
to it); every request carries a service token and may only touch its caller's prefixes."""
from __future__ import annotations

from flask import Flask

from svcommon.health import add_ready_check
from svcommon.memory import return_large_buffers
from svcommon.openapi import init_openapi
from svcommon.service import configure, init_service

from .extensions import api as openapi_spec
from .extensions import part_buffers, s3
from .settings import SETTINGS, validate


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    # Keys are validated, not normalised: 'a//b' must be refused, not redirected to 'a/b'.
    app.url_map.merge_slashes = False
    configure(app, "file-svc", SETTINGS, test_config, uses_db=False)
    validate(app.config)
    init_service(app)
    return_large_buffers()              # S3 parts of 8 MiB from many threads (svcommon.memory)
    s3store = s3.init_app(app)
    part_buffers.init_app(app)

    def s3_ready():
        s3store.ensure_bucket()         # a fresh store is ready once our bucket exists
        s3store.probe_client.head_bucket(Bucket=s3store.bucket)
    add_ready_check(app, "s3", s3_ready)

    from . import objects
    app.register_blueprint(objects.bp)
    init_openapi(app, openapi_spec)
    return app
