"""flaskr-style fixtures for auth-svc, on the session's real MariaDB."""
from __future__ import annotations

import re
import secrets
import uuid

import pytest

from auth_svc import create_app
from stack import dbsetup
from svcommon.db import execute

@pytest.fixture(scope="session")
def app(service_config):
    # The same bootstrap admin as the live stack's (whoever starts first creates it).
    app = create_app({**service_config, "ADMIN_USERNAME": "admin", "ADMIN_EMAIL": "admin@example.test"})
    with app.test_client() as c:  # first request bootstraps the admin and the signing key
        assert c.get("/.well-known/jwks.json").status_code == 200
    return app


@pytest.fixture
def admins_alone(infra, scratch_db, service_config):
    """auth-svc on a database of its own (migrated, empty), where its bootstrap admin is the
    only admin: the shared one must keep exactly one, which a test that demotes admins at the
    same instant could break for every other test."""
    name = scratch_db["database"]
    dbsetup.setup(infra["stack"], infra["secrets"]["DB_PASSWORD"], name, out=lambda m: None)
    return create_app({**service_config, "DB_NAME": name, "ADMIN_USERNAME": "admin",
                       "ADMIN_EMAIL": "admin@example.test"})


def random_ip() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def page_login(client, user: dict) -> str:
    """Log in through the login form (its CSRF field scraped from the page, as a browser
    sends it); the session's CSRF token for later forms."""
    html = client.get("/auth/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    resp = client.post("/auth/login", data={"username": user["username"], "password": user["password"],
                                            "csrf_token": csrf, "redirect": "/"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return client.get_cookie("sv_csrf").value


def live_playback_session(app, user_id: str) -> str:
    """A live playback session row of the user (on a bare video of theirs) for the account
    actions that must end it; streaming-svc's own tests make real ones."""
    vid, sid = uuid.uuid4().hex, uuid.uuid4().hex
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        execute(conn, "INSERT INTO videos (id, owner_id, title, description) VALUES (%s, %s, 'v', '')", (vid, user_id))
        execute(conn, "INSERT INTO playback_sessions (id, video_id, user_id, jkt, kek_enc, cek_enc, epoch_started_at, "
                      "codeword_length, tag_issued_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6), "
                      "64, 0, UTC_TIMESTAMP(6) + INTERVAL 5 MINUTE)", (sid, vid, user_id, "k" * 43, b"x", b"x"))
        conn.commit()
    return sid


@pytest.fixture
def client(app):
    c = app.test_client()
    # A distinct client address per test keeps the per-IP login throttle from leaking between tests.
    c.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()
    return c


class AuthActions:
    def __init__(self, client):
        self.client = client

    def register(self, username=None, password="correct horse battery", email=None):
        username = username or "u" + uuid.uuid4().hex[:10]
        email = email or f"{username}@example.test"
        resp = self.client.post("/api/auth/register", json={"username": username, "email": email, "password": password})
        assert resp.status_code == 201, resp.get_json()
        return {**resp.get_json()["user"], "password": password}

    def login(self, username, password="correct horse battery"):
        return self.client.post("/api/auth/login", json={"username": username, "password": password})

    def user_with_token(self):
        user = self.register()
        pair = self.login(user["username"], user["password"]).get_json()
        return user, pair

    def admin_token(self):
        resp = self.login("admin", self.client.application.config["ADMIN_PASSWORD"])
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["access_token"]


@pytest.fixture
def auth(client):
    return AuthActions(client)


from tests.support.dpop import FINGERPRINT, DeviceKey  # noqa: E402


@pytest.fixture
def device_token(client, auth):
    """(user, device key, DPoP-bound access token) through the real endpoint."""
    def make(bearer=None, key=None):
        if bearer is None:
            _, pair = auth.user_with_token()
            bearer = pair["access_token"]
        key = key or DeviceKey()
        resp = client.post("/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                           headers={"Authorization": f"Bearer {bearer}",
                                    "DPoP": key.proof("POST", "http://localhost/api/auth/device-token")})
        assert resp.status_code == 200, resp.get_json()
        return key, resp.get_json()
    return make
