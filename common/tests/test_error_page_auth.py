"""The branded error page shows who is logged in without authenticating the request again: a
refusal from authentication itself (CSRF, a bad token) is one security event, not two, and a
page that never authenticated (a 404) records nothing even with a forged cookie. A small app
with the shared layout, the real MariaDB (security_events) and a verifier of our own key."""
from __future__ import annotations

import json
import random
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Blueprint, Flask
from jwt.algorithms import ECAlgorithm

from svcommon import auth, errors
from svcommon.auth import ACCESS_COOKIE, CSRF_COOKIE, require_principal
from svcommon.db import Database, query
from svcommon.jwks import JWKSVerifier, static_fetcher
from svcommon.web import serve_shared_assets

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
ADDRESSES = random.Random(1207)         # one client address per test: its events are its own


def _token(key=KEY, **over) -> str:
    now = int(time.time())
    claims = {"iss": "sv", "aud": "sv-api", "sub": uuid.uuid4().hex, "name": "pat", "role": "viewer",
              "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **over}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def app(service_config):
    app = Flask(__name__)
    app.config.update(service_config, SERVICE_NAME="errpage-test")
    db = Database()
    db.init_app(app)
    errors.init_app(app)
    public = dict(json.loads(ECAlgorithm.to_jwk(KEY.public_key())), kid="k1")
    auth.init_app(app, JWKSVerifier(static_fetcher({"keys": [public]}), "sv", "sv-api"))
    pages = Blueprint("pages", __name__)
    serve_shared_assets(pages)

    @pages.post("/things")
    def things():
        require_principal()
        return "done"
    app.register_blueprint(pages)
    return app


@pytest.fixture
def client(app):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.{ADDRESSES.randrange(256)}.{ADDRESSES.randrange(256)}.{ADDRESSES.randrange(1, 255)}"
    return c


def events(app, client) -> list[str]:
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        return [r["kind"] for r in query(conn, "SELECT kind FROM security_events WHERE ip = %s",
                                         (client.environ_base["REMOTE_ADDR"],))]


def test_a_404_page_with_a_forged_cookie_records_nothing(app, client):
    client.set_cookie(ACCESS_COOKIE, _token(OTHER))          # signed by someone else's key
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "Page not found" in page.text and "sv.css" in page.text
    assert "Log in" in page.text                               # nobody is shown as logged in
    assert events(app, client) == []


def test_a_404_page_shows_the_logged_in_user(app, client):
    client.set_cookie(ACCESS_COOKIE, _token(name="pat_the_viewer"))
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "pat_the_viewer" in page.text
    assert events(app, client) == []


def test_a_csrf_refusal_page_is_one_event(app, client):
    client.set_cookie(ACCESS_COOKIE, _token(name="pat_the_viewer"))
    client.set_cookie(CSRF_COOKIE, "the-right-token")
    page = client.post("/things", data={"csrf_token": "a-wrong-token"}, headers={"Accept": "text/html"})
    assert page.status_code == 403 and "csrf_failed" in page.text
    assert "pat_the_viewer" in page.text                       # still logged in: the header says so
    assert events(app, client) == ["csrf_refused"]


def test_a_bad_token_refusal_page_is_one_event(app, client):
    client.set_cookie(ACCESS_COOKIE, _token(OTHER))
    page = client.post("/things", headers={"Accept": "text/html"})
    assert page.status_code == 401
    assert events(app, client) == ["bad_token"]
