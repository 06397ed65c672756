"""``/healthz`` (alive), ``/readyz`` (dependencies reachable) and ``/metrics`` (Prometheus)."""
from __future__ import annotations

import logging
import time
from typing import Callable

from flask import Blueprint, Flask, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

log = logging.getLogger("svcommon.health")

# Module-level (created once per process) so many apps in one test process share them.
REQUESTS = Counter("sv_http_requests_total", "HTTP requests", ["service", "method", "endpoint", "status"])
LATENCY = Histogram("sv_http_request_seconds", "HTTP request latency", ["service", "endpoint"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SECURITY_EVENTS = Counter("sv_security_events_total", "Security events recorded", ["service", "kind"])

bp = Blueprint("svcommon_health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", service=current_app.config["SERVICE_NAME"])


@bp.get("/readyz")
def readyz():
    checks: dict[str, str] = {}
    ok = True
    for name, fn in current_app.extensions.get("svcommon.ready_checks", {}).items():
        try:
            fn()
            checks[name] = "ok"
        except Exception as exc:  # a dependency is down: say which and why
            ok = False
            checks[name] = f"fail: {exc.__class__.__name__}: {exc}"[:300]
    resp = jsonify(status="ready" if ok else "not_ready", checks=checks)
    resp.status_code = 200 if ok else 503
    return resp


@bp.get("/metrics")
def metrics():
    return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}


def add_ready_check(app: Flask, name: str, fn: Callable[[], None]) -> None:
    app.extensions.setdefault("svcommon.ready_checks", {})[name] = fn


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    service = app.config["SERVICE_NAME"]

    @app.before_request
    def _start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(resp):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(service, request.method, endpoint, str(resp.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            LATENCY.labels(service, endpoint).observe(time.perf_counter() - started)
        return resp
