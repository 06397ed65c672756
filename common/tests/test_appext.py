"""Per-app extensions: each app its own object, reachable in a request and outside one."""
from __future__ import annotations

from flask import Flask

from svcommon.appext import PerApp
from svcommon.filestore import FileStore, FileStoreExtension

CFG = {"FILE_SVC_URL": "http://127.0.0.1:9/", "AUTH_SVC_URL": "http://127.0.0.1:9", "SERVICE_SECRET_UPLOAD": "s"}


def _app(**cfg) -> Flask:
    app = Flask(__name__)
    app.config.update(CFG, **cfg)
    return app


def test_each_app_gets_its_own_object():
    counter = PerApp("test.counter", lambda cfg: {"n": cfg["N"]})
    a, b = _app(N=1), _app(N=2)
    assert counter.init_app(a) == {"n": 1} and counter.init_app(b) == {"n": 2}
    assert counter(a) is a.extensions["test.counter"] and counter(b) == {"n": 2}
    with b.test_request_context("/"):
        assert counter() is counter(b)


def test_filestore_extension_builds_the_service_client():
    filestore = FileStoreExtension("upload")
    app = _app()
    fs = filestore.init_app(app)
    assert isinstance(fs, FileStore) and fs.service == "upload" and fs.base_url == "http://127.0.0.1:9"
    with app.app_context():
        assert filestore() is fs is filestore(app)
