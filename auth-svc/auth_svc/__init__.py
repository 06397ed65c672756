"""auth-svc: accounts, roles, login pages, JWTs (ES256, JWKS), refresh rotation, DPoP
device-bound tokens, login throttling, admin user management."""
from __future__ import annotations

import threading

import click
from flask import Flask

from svcommon.jwks import JWKSVerifier
from svcommon.openapi import init_openapi
from svcommon.quota import validate as validate_quota
from svcommon.service import configure, init_service

from . import accounts
from .extensions import db, keyring
from .extensions import api as openapi_spec
from .signing_keys import KeyRing
from .settings import SETTINGS


def create_app(test_config: dict | None = None) -> Flask:
    # No app-wide /static: the gateway routes only /auth/ here; pages' assets live under it.
    app = Flask(__name__, static_folder=None)
    configure(app, "auth-svc", SETTINGS, test_config)
    validate_quota(app.config)
    ring = keyring.init_app(app)
    # auth-svc verifies its own tokens from its key ring, not over HTTP to itself.
    init_service(app, db, JWKSVerifier(ring.jwks, app.config["JWT_ISSUER"], app.config["JWT_AUDIENCE"],
                                       min_refetch_interval=0))
    _start_lazily(app, ring)

    from . import account_pages, admin, admin_pages, api, api_tokens, devices, pages, wellknown
    for mod in (api, api_tokens, pages, account_pages, devices, admin, admin_pages, wellknown):
        app.register_blueprint(mod.bp)
    init_openapi(app, openapi_spec)

    @app.get("/")
    def index():
        from flask import redirect
        return redirect("/auth/login", 303)

    @app.cli.command("rotate-key")
    def rotate_key():
        """Make a new signing key active; the old one stays published until its tokens expire."""
        with db.standalone() as conn:
            click.echo(f"new signing key: {ring.rotate(conn)}")

    return app

def _start_lazily(app: Flask, ring: KeyRing) -> None:
    """Bootstrap admin + first signing key on the first request (the DB may not be up when
    gunicorn imports us); afterwards reload keys periodically to see rotations."""
    started = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def _ensure_started():
        if started.is_set() and not ring.stale():
            return
        with lock:
            with db.standalone() as conn:
                if not started.is_set():
                    ring.ensure(conn)
                    cfg = app.config
                    accounts.ensure_admin(conn, cfg["ADMIN_USERNAME"], cfg["ADMIN_EMAIL"], cfg["ADMIN_PASSWORD"])
                    started.set()
                elif ring.stale():
                    ring.reload(conn)
