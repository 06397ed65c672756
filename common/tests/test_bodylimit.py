"""svcommon.bodylimit in-process: every route has a small body limit, checked before the
view reads a byte (Content-Length and chunked), large routes raise it explicitly."""
from __future__ import annotations

import io

import pytest
from flask import Flask, request

from svcommon import bodylimit, errors
from svcommon.bodylimit import body_limit


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(BODY_MAX_BYTES=1024, BODY_DRAIN_MAX_BYTES=1024, BODY_DRAIN_SECONDS=1.0, BIG=100_000)
    errors.init_app(app)
    bodylimit.init_app(app)
    app.extensions["seen"] = []

    @app.post("/api/small")
    def small():
        app.extensions["seen"].append("small")
        return {"n": len(request.get_data())}

    @app.post("/auth/form")
    def form():
        app.extensions["seen"].append("form")
        return {"fields": sorted(request.form)}

    @app.post("/api/big")
    @body_limit("BIG")
    def big():
        return {"n": len(request.stream.read())}

    @app.post("/api/computed")
    @body_limit(lambda cfg: cfg["BIG"] // 2)
    def computed():
        return {"n": len(request.get_data())}

    return app


def test_default_limit_refuses_on_content_length_before_the_view(app):
    client = app.test_client()
    assert client.post("/api/small", data=b"x" * 1024).get_json() == {"n": 1024}
    r = client.post("/api/small", data=b"x" * 1025)
    assert r.status_code == 413
    assert r.get_json() == {"error": "request body exceeds this route's limit of 1024 bytes",
                            "code": "body_too_large"}
    assert app.extensions["seen"] == ["small"]          # the view never ran for the big one


def test_multipart_form_over_the_limit_is_never_parsed(app):
    r = app.test_client().post("/auth/form", data={"username": "u", "password": "p", "pad": "x" * 5000},
                               content_type="multipart/form-data")
    # A browser form gets the error as a page (JSON for /api/ paths).
    assert r.status_code == 413 and "data-code='body_too_large'" in r.get_data(as_text=True)
    assert app.extensions["seen"] == []


def test_chunked_body_is_cut_at_the_limit(app):
    # No Content-Length: the stream guard stops reading at the limit.
    r = app.test_client().post("/api/small", input_stream=io.BytesIO(b"x" * 5000),
                               headers={"Transfer-Encoding": "chunked"},
                               environ_overrides={"wsgi.input_terminated": True,   # as gunicorn sets
                                                  "CONTENT_LENGTH": ""})
    assert r.status_code == 413 and "1024 bytes" in r.get_json()["error"]


def test_large_routes_raise_their_own_limit(app):
    client = app.test_client()
    assert client.post("/api/big", data=b"x" * 100_000).get_json() == {"n": 100_000}
    assert client.post("/api/big", data=b"x" * 100_001).status_code == 413
    assert client.post("/api/computed", data=b"x" * 50_000).status_code == 200
    r = client.post("/api/computed", data=b"x" * 50_001)
    assert r.status_code == 413 and "50000 bytes" in r.get_json()["error"]


def test_unknown_routes_get_the_default_limit(app):
    r = app.test_client().post("/api/nowhere", data=b"x" * 2000)
    assert r.status_code == 413


class _Server:
    """A WSGI server's start_response that can be told to close (like gunicorn's Response)."""

    def __init__(self):
        self.closed, self.headers = False, []

    def force_close(self):
        self.closed = True

    def start_response(self, status, headers, exc_info=None):
        self.headers = headers


def _call(app, body: bytes, path="/api/small", length: int | None = None):
    server = _Server()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "x", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
               "CONTENT_LENGTH": str(len(body) if length is None else length)}
    result = app.wsgi_app(environ, server.start_response)
    b"".join(result)
    result.close()
    return server, environ["wsgi.input"]


def test_unread_small_body_is_drained_and_the_connection_kept(app):
    app.config["BODY_MAX_BYTES"] = 10_000
    server, stream = _call(app, b"x" * 900, path="/api/refuse")   # 404: view never reads
    assert not server.closed and stream.count == 900
    assert ("Connection", "close") not in server.headers


def test_unread_large_body_closes_the_connection_with_notice(app):
    server, stream = _call(app, b"x" * 5000)                        # 413 on Content-Length
    assert server.closed and ("Connection", "close") in server.headers
    assert stream.count == 0                                          # nothing of it was read


def test_read_body_keeps_the_connection(app):
    server, _ = _call(app, b"x" * 900)
    assert not server.closed and ("Connection", "close") not in server.headers


def test_content_length_in_other_digits_is_not_a_crash(app):
    # "²".isdigit() is true but int("²") raises: the limit check must not take it for a number.
    r = app.test_client().post("/api/small", data=b"", environ_overrides={"CONTENT_LENGTH": "²"})
    assert r.status_code < 500
