"""Uniform errors: ``{"error": "<human message>", "code": "<slug>"}`` for APIs, a plain
escaped page for browsers. Every 4xx is logged with its code so bad input is visible."""
from __future__ import annotations

import html
import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("svcommon.errors")


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/objects", "/.well-known/", "/media/")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    if wants_json():
        resp = jsonify(error=message, code=code)
    else:
        body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{status}</title></head>"
                f"<body><h1>{status}</h1><p class='error' data-code='{html.escape(code)}'>"
                f"{html.escape(message)}</p><p><a href='/'>Home</a></p></body></html>")
        resp = Flask.response_class(body, mimetype="text/html")
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        level = logging.WARNING if err.status < 500 else logging.ERROR
        log.log(level, "request refused", extra={"status": err.status, "code": err.code, "detail": err.message})
        return error_response(err.status, err.code, err.message, err.headers)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if err.code and err.code < 500:
            log.warning("request refused", extra={"status": err.code, "code": _slug(err.name)})
        headers = {}
        if err.code == 405 and getattr(err, "valid_methods", None):
            headers["Allow"] = ", ".join(err.valid_methods)
        return error_response(err.code or 500, _slug(err.name), err.description or err.name, headers)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal server error; it has been logged.")
