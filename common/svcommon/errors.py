"""Uniform errors: ``{"error": "<human message>", "code": "<slug>"}`` for APIs, the branded
error page (sv_error.html in the shared layout) for browsers. Every 4xx is logged with its code
so bad input is visible."""
from __future__ import annotations

import html
import logging

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, NotFound

log = logging.getLogger("svcommon.errors")


class APIError(Exception):
    """``fields``: every invalid input at once, ``{"<field>": ["<message>", ...]}``, sent as
    ``"fields"`` beside ``error`` (which then summarises them)."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None,
                 fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.fields = fields or {}


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/objects", "/.well-known/", "/media/")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, message: str, headers: dict | None = None,
                   fields: dict[str, list[str]] | None = None):
    if wants_json():
        resp = jsonify(error=message, code=code, **({"fields": fields} if fields else {}))
    else:
        resp = Flask.response_class(_html_page(status, code, message), mimetype="text/html")
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


TITLES = {401: "Please log in", 403: "Not allowed", 404: "Page not found", 405: "Not allowed",
          429: "Too many requests", 500: "Something went wrong"}


# Werkzeug's stock 404 text ("The requested URL was not found on the server. If you entered the
# URL manually please check your spelling…") reads like a server fault; a page says what to do.
# (APIs keep it: their clients read the code.)
_PAGE_WORDING = {NotFound.description: "There is no page at this address. Check the link, or go back to the start."}


def _html_page(status: int, code: str, message: str) -> str:
    """The shared layout when the app serves pages (svcommon.web); otherwise a bare page."""
    title = TITLES.get(status, "Error" if status < 500 else "Something went wrong")
    message = _PAGE_WORDING.get(message, message)
    if "svweb" in current_app.blueprints:
        try:
            return render_template("sv_error.html", status=status, code=code, message=message,
                                   title=title, user=_user_or_none())
        except Exception:  # the error page must never fail: fall back to the bare one
            log.exception("error page failed to render")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p class='error' data-code='{html.escape(code)}'>"
            f"{html.escape(message)}</p><p><a href='/'>Home</a></p></body></html>")


def _user_or_none():
    from .auth import principal_for_display  # (auth imports this module)
    return principal_for_display()


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        level = logging.WARNING if err.status < 500 else logging.ERROR
        log.log(level, "request refused", extra={"status": err.status, "code": err.code, "detail": err.message})
        return error_response(err.status, err.code, err.message, err.headers, err.fields)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if err.code and err.code < 500:
            log.warning("request refused", extra={"status": err.code, "code": _slug(err.name)})
        headers = {}
        if err.code == 405 and getattr(err, "valid_methods", None):
            headers["Allow"] = ", ".join(err.valid_methods)
        return error_response(err.code or 500, _slug(err.name), err.description or err.name, headers)

    app.register_error_handler(Exception, internal_error)


def internal_error(err: Exception):
    """An error nothing expected: logged with its traceback, 500 ``internal_error``."""
    log.error("unhandled error", exc_info=err)
    return error_response(500, "internal_error", "Internal server error; it has been logged.")
