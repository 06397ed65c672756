"""Login/signup/logout pages: same-origin redirects only, CSRF on every cookie-authenticated
state change, cookies HttpOnly + SameSite."""
from __future__ import annotations

import re

import pytest


def _csrf(client, path="/auth/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login_form(client, username, password, redirect="/", csrf=None):
    token = csrf if csrf is not None else _csrf(client)
    return client.post("/auth/login", data={"username": username, "password": password,
                                            "redirect": redirect, "csrf_token": token})


def test_login_page_renders_form(client):
    resp = client.get("/auth/login?redirect=/upload/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'name="redirect" value="/upload/"' in html
    assert "sv_csrf" in resp.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example", "http:/evil",
                                    "javascript:alert(1)", "\\\\evil.example", "evil", "/\tevil", "///evil.example",
                                    "/x\r\nSet-Cookie: a=b"])
def test_open_redirects_are_refused(client, auth, target):
    user = auth.register()
    page = client.get("/auth/login", query_string={"redirect": target}).get_data(as_text=True)
    assert 'name="redirect" value="/"' in page
    resp = _login_form(client, user["username"], user["password"], redirect=target)
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/"


def test_encoded_path_redirect_stays_on_our_origin(client, auth):
    user = auth.register()
    resp = _login_form(client, user["username"], user["password"], redirect="/%0d%0aSet-Cookie:x")
    assert resp.headers["Location"] == "/%0d%0aSet-Cookie:x"      # a harmless path on our own origin
    assert "x" not in {c.split("=")[0] for c in resp.headers.getlist("Set-Cookie")}


def test_login_sets_secure_cookies_and_redirects(client, auth):
    user = auth.register()
    resp = _login_form(client, user["username"], user["password"], redirect="/watch/abc?t=5")
    assert resp.status_code == 303 and resp.headers["Location"] == "/watch/abc?t=5"
    cookies = {c.split("=", 1)[0]: c for c in resp.headers.getlist("Set-Cookie")}
    assert "HttpOnly" in cookies["sv_access"] and "SameSite=Lax" in cookies["sv_access"]
    assert "HttpOnly" in cookies["sv_refresh"] and "SameSite=Strict" in cookies["sv_refresh"]
    assert "HttpOnly" not in cookies["sv_csrf"]
    assert client.get("/api/auth/profile").get_json()["username"] == user["username"]


def test_failed_login_page_is_401_with_message(client, auth):
    user = auth.register()
    resp = _login_form(client, user["username"], "nope nope nope")
    assert resp.status_code == 401
    assert "wrong username or password" in resp.get_data(as_text=True)


def test_login_form_without_csrf_is_refused(client, auth):
    user = auth.register()
    client.get("/auth/login")
    resp = _login_form(client, user["username"], user["password"], csrf="forged")
    assert resp.status_code == 403
    assert "sv_access" not in resp.headers.get("Set-Cookie", "")
    assert "Your form expired" in resp.get_data(as_text=True)


def test_a_form_posted_without_any_cookie_says_cookies_are_blocked(client, auth):
    """No cookie at all: the browser blocks this site's cookies, so "expired, try again" would
    fail for ever; the page says what to change instead."""
    user = auth.register()
    token = _csrf(client)
    client.delete_cookie("sv_csrf")          # as a browser that never kept it
    resp = _login_form(client, user["username"], user["password"], csrf=token)
    assert resp.status_code == 403 and "sv_access" not in resp.headers.get("Set-Cookie", "")
    page = resp.get_data(as_text=True)
    assert "blocks them" in page and "expired" not in page


def _cookie_login(client, auth):
    user = auth.register()
    assert _login_form(client, user["username"], user["password"]).status_code == 303
    return user, client.get_cookie("sv_csrf").value


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/auth/logout", {}),
    ("POST", "/api/auth/refresh", {}),
    ("POST", "/api/auth/device-token", {"fingerprint": {}}),
    ("DELETE", "/api/devices/whatever", None),
])
def test_cookie_requests_without_csrf_are_refused(client, auth, method, path, body):
    _cookie_login(client, auth)
    resp = client.open(path, method=method, json=body)
    assert resp.status_code == 403
    assert resp.get_json()["code"] == "csrf_failed"


def test_cookie_refresh_with_csrf_rotates(client, auth):
    _, csrf = _cookie_login(client, auth)
    old = client.get_cookie("sv_refresh").value
    resp = client.post("/api/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 200
    assert client.get_cookie("sv_refresh").value != old
    # HttpOnly cookies only: the body must not hand the tokens to scripts (issue #11).
    assert "refresh_token" not in resp.get_json() and "access_token" not in resp.get_json()


@pytest.mark.parametrize("path", ["/auth/login", "/auth/signup", "/auth/nowhere"])
def test_pages_cannot_be_framed(client, path):
    resp = client.get(path, headers={"Accept": "text/html"})
    assert resp.mimetype == "text/html"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_logout_page_clears_cookies_and_revokes(client, auth):
    _, csrf = _cookie_login(client, auth)
    refresh = client.get_cookie("sv_refresh").value
    resp = client.post("/auth/logout", data={"csrf_token": csrf})
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    assert client.get_cookie("sv_access") is None
    assert client.post("/api/auth/refresh", json={"refresh_token": refresh}).status_code == 401
    # The login page says so, once.
    assert "You have been logged out." in client.get("/auth/login").get_data(as_text=True)
    assert "You have been logged out." not in client.get("/auth/login").get_data(as_text=True)


def test_flash_text_comes_only_from_the_catalogue(client):
    client.set_cookie("sv_flash", "<script>alert(1)</script>")
    page = client.get("/auth/login").get_data(as_text=True)
    assert "alert(1)" not in page and 'class="flash"' not in page


@pytest.mark.parametrize("target,expected", [("/upload/", "/upload/"), ("//evil.example", "/"),
                                             ("/auth/login", "/")])
def test_logged_in_user_is_sent_on_from_login(client, auth, target, expected):
    _cookie_login(client, auth)
    resp = client.get("/auth/login", query_string={"redirect": target})
    assert resp.status_code == 303 and resp.headers["Location"] == expected
    assert client.get("/auth/signup").status_code == 303


def test_error_pages_are_branded_html_and_api_errors_json(client):
    page = client.get("/auth/nowhere", headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and "Page not found" in html and "/auth/sv/sv.css" in html
    api = client.get("/api/auth/nowhere", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.get_json()["code"] == "not_found"


def test_signup_page_creates_account_and_logs_in(client):
    csrf = _csrf(client, "/auth/signup")
    resp = client.post("/auth/signup", data={"username": "signup_page_user", "email": "sp@example.test",
                                             "password": "a long enough password", "csrf_token": csrf,
                                             "redirect": "/upload/"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/upload/"
    assert client.get("/api/auth/profile").get_json()["role"] == "viewer"


def test_signup_page_escapes_input(client):
    csrf = _csrf(client, "/auth/signup")
    resp = client.post("/auth/signup", data={"username": "<script>x</script>", "email": "\"><img src=x>@e.test",
                                             "password": "a long enough password", "csrf_token": csrf})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


def test_signup_can_be_disabled(app, service_config):
    from auth_svc import create_app
    closed = create_app({**service_config, "SIGNUP_ENABLED": False})
    c = closed.test_client()
    resp = c.post("/api/auth/register", json={"username": "nobody123", "email": "n@e.test", "password": "x" * 12})
    assert resp.status_code == 403 and resp.get_json()["code"] == "signup_disabled"


def test_expired_page_session_bounces_through_refresh(client, auth):
    _cookie_login(client, auth)
    client.set_cookie("sv_access", "expired.or.garbage")
    resp = client.get("/auth/refresh?redirect=/upload/")
    assert resp.status_code == 303 and resp.headers["Location"] == "/upload/"
    assert client.get("/api/auth/profile").status_code == 200
