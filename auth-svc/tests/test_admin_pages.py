"""The admin users page: admins only, search and paging, role and disable/enable effective
at once (and audited), reset links shown to the admin; the API list searches the same way."""
from __future__ import annotations

import re
import uuid

from svcommon.db import query

from .conftest import page_login


def _admin_login(app, client):
    return page_login(client, {"username": app.config["ADMIN_USERNAME"], "password": app.config["ADMIN_PASSWORD"]})


def test_only_admins(client, auth):
    assert client.get("/admin/users").status_code == 303                 # to the login page
    page_login(client, auth.register())
    resp = client.get("/admin/users", headers={"Accept": "text/html"})
    assert resp.status_code == 403 and "Not allowed" in resp.get_data(as_text=True)


def test_admin_and_account_pages_are_never_cached(app, client, auth):
    _admin_login(app, client)
    for path in ("/admin/users", "/auth/account"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.headers.get("Cache-Control") == "no-store", path


def test_search_role_disable_enable_and_reset_link(app, client, auth):
    tag = uuid.uuid4().hex[:8]
    user = auth.register(username=f"find_{tag}")
    other = auth.register(username=f"else_{tag}")
    refresh = auth.login(user["username"], user["password"]).get_json()["refresh_token"]
    csrf = _admin_login(app, client)
    page = client.get("/admin/users", query_string={"q": f"find_{tag}"}).get_data(as_text=True)
    assert f"find_{tag}" in page and f"else_{tag}" not in page and "1 user " in page
    assert "0 users" in client.get("/admin/users", query_string={"q": "%_%" + tag}).get_data(as_text=True)
    api = auth.client.get("/api/admin/users", query_string={"q": tag},
                          headers={"Authorization": f"Bearer {auth.admin_token()}"}).get_json()
    assert {u["username"] for u in api["items"]} == {user["username"], other["username"]}
    back = f"/admin/users?q=find_{tag}"
    resp = client.post(f"/admin/users/{user['id']}", data={"csrf_token": csrf, "action": "role", "role": "uploader",
                                                           "back": back})
    assert resp.status_code == 303 and resp.headers["Location"] == back
    resp = client.post(f"/admin/users/{user['id']}", data={"csrf_token": csrf, "action": "disable", "back": back})
    assert resp.status_code == 303
    assert auth.client.post("/api/auth/refresh", json={"refresh_token": refresh}).status_code == 401   # at once
    assert auth.login(user["username"], user["password"]).status_code == 403
    page = client.get(back).get_data(as_text=True)
    assert "The user has been updated." in page and "disabled</span>" in page and 'value="uploader" selected' in page
    client.post(f"/admin/users/{user['id']}", data={"csrf_token": csrf, "action": "enable", "back": back})
    assert auth.login(user["username"], user["password"]).status_code == 200
    issued = client.post(f"/admin/users/{user['id']}", data={"csrf_token": csrf, "action": "reset-link"})
    assert issued.status_code == 200 and re.search(r'value="http://localhost/auth/reset/[\w-]+"',
                                                   issued.get_data(as_text=True))
    bad = client.post(f"/admin/users/{user['id']}", data={"csrf_token": csrf, "action": "role", "role": "god"})
    assert bad.status_code == 400 and "role must be one of" in bad.get_data(as_text=True)
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        rows = query(conn, "SELECT kind, detail, actor_id FROM security_events WHERE user_id = %s "
                           "AND kind LIKE 'admin_user_%%' ORDER BY created_at", (user["id"],))
    assert [r["kind"] for r in rows] == ["admin_user_updated", "admin_user_disabled", "admin_user_updated"]
    assert "disabled=True" in rows[1]["detail"] and "disabled=False" in rows[2]["detail"]
    assert all(r["actor_id"] for r in rows)
