"""JSON logs with a request id that follows a request across services.

The gateway (or the first service hit) sets ``X-Request-ID``; every service echoes it,
adds it to each log line and forwards it on service-to-service calls (svcommon.filestore)."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

_RID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# URL path segments that are secrets (capabilities), never written to a log or a stored event:
# a one-time password reset link's token (/auth/reset/<token>) and a playback session's media
# token (/api/stream/m/<session>/<token>/...) and a download ticket
# (/api/stream/download/<session>/<token>). Every route with a ``<token>`` is listed here
# (tests/test_log_redaction.py checks it); the gateway's access log redacts the same
# (gateway/nginx.conf.template, map $uri $sv_log_uri). Query strings are never logged.
_SECRET_IN_PATH = re.compile(r"^(/auth/reset/|/api/stream/(?:m|download)/[^/]*/)[^/]+")
_STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def loggable_path(path: str) -> str:
    """``path`` with its secret segment (if any) replaced by ``-``."""
    return _SECRET_IN_PATH.sub(r"\1-", path)


def current_request_id() -> str | None:
    return getattr(g, "request_id", None) if has_request_context() else None


class JSONFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = current_request_id()
        if rid:
            out["request_id"] = rid
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


# Libraries that log routine chatter at INFO (mysql.connector announces its auth plugins on
# every connection) or DEBUG: only their warnings and errors reach the output.
_LIBRARIES = ("mysql.connector", "botocore", "boto3", "s3transfer", "urllib3", "werkzeug")


def configure(service: str, level: str = "INFO") -> None:
    # Never below WARNING, nor below LOG_LEVEL: records propagate to the root handler
    # whatever the root logger's own level, so a library's level is its only filter.
    named = logging.getLevelNamesMapping().get(str(level).upper(), logging.INFO)
    quiet = max(logging.WARNING, level if isinstance(level, int) else named)
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    root = logging.getLogger()
    if any(getattr(h, "_svcommon", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(service))
    handler._svcommon = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask, service: str) -> None:
    configure(service, app.config.get("LOG_LEVEL", "INFO"))
    access = logging.getLogger(f"{service}.access")

    @app.before_request
    def _assign_request_id():
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if _RID_OK.match(rid) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(resp):
        resp.headers["X-Request-ID"] = getattr(g, "request_id", "")
        if request.path not in ("/healthz", "/readyz", "/metrics"):
            access.info("request", extra={
                "method": request.method, "path": loggable_path(request.path), "status": resp.status_code,
                "ms": round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 1),
                "client": request.remote_addr,
            })
        return resp
