"""Wires the shared pieces into a service's Flask app in one call from ``create_app``."""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, bodylimit, errors, headers, health, logs
from .config import BODY_SETTINGS, DB_SETTINGS, TOKEN_SETTINGS, Setting, load
from .db import Database


def configure(app: Flask, service: str, spec: list[Setting], test_config: dict | None,
              uses_db: bool = True) -> None:
    """Load and validate settings (fail fast), before anything else touches config."""
    base = (DB_SETTINGS if uses_db else []) + TOKEN_SETTINGS + BODY_SETTINGS
    app.config.update(load(base + spec, overrides=test_config))
    app.config["SERVICE_NAME"] = service


def init_service(app: Flask, db: Database | None = None, verifier=None) -> None:
    hops = int(app.config.get("TRUSTED_PROXY_HOPS", 1))
    if hops > 0:
        # Behind the gateway: trust exactly its X-Forwarded-* so request.remote_addr is the
        # client and request.base_url is the public URL (DPoP htu is checked against it).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    logs.init_app(app, app.config["SERVICE_NAME"])
    errors.init_app(app)
    bodylimit.init_app(app)   # before auth and every view: refuses on headers alone
    headers.init_app(app)
    health.init_app(app)
    if db is not None:
        db.init_app(app)
        health.add_ready_check(app, "database", db.ping)
    auth.init_app(app, verifier)
