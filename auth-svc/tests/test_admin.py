"""Admin user management: list, role changes, disable; never by non-admins."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from auth_svc.extensions import db
from auth_svc.repository import count_active_admins

from .conftest import AuthActions, random_ip


def _h(token):
    return {"Authorization": f"Bearer {token}"}


def test_admin_lists_and_promotes(client, auth):
    admin = auth.admin_token()
    user = auth.register()
    # Searched for by name: the shared test database holds more users than one page.
    listing = client.get("/api/admin/users", query_string={"q": user["username"]}, headers=_h(admin)).get_json()
    assert [u["id"] for u in listing["items"]] == [user["id"]]
    resp = client.patch(f"/api/admin/users/{user['id']}", json={"role": "uploader"}, headers=_h(admin))
    assert resp.status_code == 200 and resp.get_json()["role"] == "uploader"
    assert auth.login(user["username"]).get_json()["user"]["role"] == "uploader"


def test_disable_blocks_login_and_refresh(client, auth):
    admin = auth.admin_token()
    user, pair = auth.user_with_token()
    assert client.patch(f"/api/admin/users/{user['id']}", json={"disabled": True}, headers=_h(admin)).status_code == 200
    assert auth.login(user["username"]).status_code == 403
    assert client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401


@pytest.mark.parametrize("body", [{"role": "superuser"}, {"disabled": "yes"}, {}, {"role": "' OR 1=1"}])
def test_bad_patches(client, auth, body):
    admin = auth.admin_token()
    user = auth.register()
    assert client.patch(f"/api/admin/users/{user['id']}", json=body, headers=_h(admin)).status_code == 400


def test_non_admin_is_forbidden(client, auth):
    _, pair = auth.user_with_token()
    victim = auth.register()
    assert client.get("/api/admin/users", headers=_h(pair["access_token"])).status_code == 403
    resp = client.patch(f"/api/admin/users/{victim['id']}", json={"role": "admin"}, headers=_h(pair["access_token"]))
    assert resp.status_code == 403


def test_last_admin_cannot_demote_itself(app, client, auth):
    admin = auth.admin_token()
    me = client.get("/api/auth/profile", headers=_h(admin)).get_json()
    with app.app_context():
        # Checked first: with another admin about, the PATCH below would really demote the
        # bootstrap admin, and every later test that needs it would fail instead of this one.
        assert count_active_admins(db.conn()) == 1, "an earlier test left another active admin"
    resp = client.patch(f"/api/admin/users/{me['id']}", json={"role": "viewer"}, headers=_h(admin))
    assert resp.status_code == 409


def test_unknown_user_is_404(client, auth):
    admin = auth.admin_token()
    assert client.patch("/api/admin/users/nope", json={"role": "viewer"}, headers=_h(admin)).status_code == 404


def test_service_token_requires_the_right_secret(app, client):
    ok = client.post("/api/auth/service-token", json={"service": "upload", "secret": app.config["SERVICE_SECRET_UPLOAD"]})
    assert ok.status_code == 200
    import jwt
    assert jwt.decode(ok.get_json()["access_token"], options={"verify_signature": False})["aud"] == "streamvault-internal"
    for body in ({"service": "upload", "secret": "wrong"}, {"service": "root", "secret": "x"},
                 {"service": "upload", "secret": app.config["SERVICE_SECRET_STREAMING"]}):
        assert client.post("/api/auth/service-token", json=body).status_code == 401
    # a service token is not a user token
    svc = ok.get_json()["access_token"]
    assert client.get("/api/auth/profile", headers=_h(svc)).status_code == 401


def test_two_admins_demoting_each_other_at_once_leave_one(admins_alone):
    """The last-admin check counted the active admins in the snapshot of the request's first
    read: two admins demoting each other at the same instant both saw two and both passed,
    and nobody could administer the site any more. Now one is demoted and the other is
    refused with 409 last_admin."""
    app = admins_alone
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()
    auth = AuthActions(client)
    first = auth.admin_token()
    second = auth.register()
    assert client.patch(f"/api/admin/users/{second['id']}", json={"role": "admin"}, headers=_h(first)).status_code == 200
    tokens = {"first": first, "second": auth.login(second["username"], second["password"]).get_json()["access_token"]}
    ids = {"first": client.get("/api/auth/profile", headers=_h(first)).get_json()["id"], "second": second["id"]}
    start = threading.Barrier(2)

    def demote(who: str, whom: str) -> int:
        c = app.test_client()
        start.wait()
        return c.patch(f"/api/admin/users/{ids[whom]}", json={"role": "viewer"}, headers=_h(tokens[who])).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(demote, ("first", "second"), ("second", "first")))
    with app.app_context():
        left = count_active_admins(db.conn())
    assert codes == [200, 409] and left == 1, (codes, left)
