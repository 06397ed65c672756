"""The shared layout through the gateway: every app's static assets resolve there, error pages
are branded (JSON for the APIs), flash messages show once, and every page passes the layout
and accessibility checks in real Chromium at desktop and phone sizes."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import requests

from tests.support.browser import chromium_page
from tests.support.page_checks import asset_log, check_page, login
from tests.support.videos import register_user, restart_service

PUBLIC_APPS = ("auth_svc", "streaming_svc", "upload_svc", "watermark_svc")
HEADER = ("header .brand", "#logout-form button")


def _static_urls(app):
    """(url, file) for every file every static route of the app serves."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.endswith("static"):
            continue
        bp = rule.endpoint.rpartition(".")[0]
        folder = app.blueprints[bp].static_folder if bp else app.static_folder
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file():
                yield rule.rule.replace("<path:filename>", f.relative_to(folder).as_posix()), f


@pytest.mark.parametrize("package", PUBLIC_APPS)
def test_every_static_asset_resolves_through_the_gateway(live_stack, service_config, package):
    app = importlib.import_module(package).create_app(dict(service_config))
    urls = list(_static_urls(app))
    assert urls, package
    for url, f in urls:
        resp = requests.get(live_stack["url"] + url, timeout=10)
        assert resp.status_code == 200 and resp.content == f.read_bytes(), (package, url, resp.status_code)


@pytest.mark.parametrize("path", ["/no/such/page", "/auth/nowhere", "/upload/nowhere", "/admin/forensics/nowhere"])
def test_unknown_pages_are_branded_and_apis_stay_json(live_stack, path):
    gw = live_stack["url"]
    page = requests.get(gw + path, headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 404 and "Page not found" in page.text and "/sv/sv.css" in page.text
    assert "There is no page at this address." in page.text and "requested URL" not in page.text
    for api in ("/api/no/such", "/media/nope"):
        resp = requests.get(gw + api, headers={"Accept": "text/html"}, timeout=10)
        assert resp.status_code >= 400 and resp.headers["Content-Type"].startswith("application/json")


def test_anonymous_pages(live_stack):
    gw = live_stack["url"]
    with chromium_page() as page, asset_log(page) as failed:
        page.goto(f"{gw}/auth/login")
        check_page(page, "login", ("input[name=username]", "input[name=password]", "#login-form button"))
        page.goto(f"{gw}/auth/signup")
        page.fill("input[name=password]", "password123")
        page.wait_for_function("() => document.getElementById('password-strength').textContent.includes('common')")
        check_page(page, "signup", ("input[name=email]", "#signup-form button"))
        page.fill("input[name=username]", "layout_user")
        page.fill("input[name=email]", "nobody@localhost")   # the browser's check passes, the server's not
        page.click("#signup-form button")
        page.wait_for_selector("#form-errors")
        assert page.locator("#form-errors li").count() == 2   # email and password, at once
        check_page(page, "signup-errors", ("#signup-form button",))
        page.goto(f"{gw}/no/such/page")
        check_page(page, "error-404", ("main .button",))
        assert not failed, failed


def test_signed_in_pages_and_logout_flash(live_stack):
    gw = live_stack["url"]
    user = register_user(gw, "lay")
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, user)
        check_page(page, "library", HEADER)
        page.goto(f"{gw}/upload/")
        check_page(page, "upload", HEADER)
        page.goto(f"{gw}/watch/{'0' * 32}")
        assert "Not found" in page.inner_text("h1")
        check_page(page, "watch-not-found", HEADER)
        page.goto(f"{gw}/auth/login?redirect=/upload/")      # already logged in: sent on
        assert page.url == f"{gw}/upload/"
        page.goto(f"{gw}/admin/security")
        assert "Not allowed" in page.inner_text("h1")
        check_page(page, "error-403", HEADER)
        page.set_viewport_size({"width": 390, "height": 844})
        page.click("#logout-form button")
        page.wait_for_url(f"{gw}/auth/login")
        assert page.inner_text("#flash") == "You have been logged out."
        check_page(page, "logged-out", ("#flash",))
        page.reload()
        assert page.locator("#flash").count() == 0           # once
        assert not failed, failed


def test_admin_pages(live_stack):
    gw = live_stack["url"]
    admin = {"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]}
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, admin, "/admin/forensics")
        check_page(page, "admin-forensics", HEADER)
        page.goto(f"{gw}/admin/security")
        check_page(page, "admin-security", HEADER)
        assert not failed, failed


def test_an_unexpected_error_is_a_branded_500_page(live_stack, service_config):
    """A bug in a handler: the shared layout's 500 page in the browser (the exception's text
    stays in the log), JSON for an API path."""
    from upload_svc import create_app
    app = create_app(dict(service_config))

    @app.get("/upload/broken", endpoint="broken_page")
    @app.get("/api/broken", endpoint="broken_api")
    def broken():
        raise RuntimeError("internal detail that must not reach the page")

    client = app.test_client()
    resp = client.get("/upload/broken", headers={"Accept": "text/html"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 500 and resp.mimetype == "text/html"
    assert "Something went wrong" in body and "/sv/sv.css" in body and "internal detail" not in body
    api = client.get("/api/broken", headers={"Accept": "text/html"})
    assert api.status_code == 500 and api.get_json()["code"] == "internal_error"
    gw = live_stack["url"]
    with chromium_page() as page, asset_log(page) as failed:
        # The page as the gateway would deliver it, so its stylesheet loads from the gateway.
        page.route(f"{gw}/upload/broken", lambda route: route.fulfill(status=500, body=body, content_type="text/html"))
        page.goto(f"{gw}/upload/broken")
        assert page.inner_text("h1") == "Something went wrong"
        check_page(page, "error-500", ("main .button",))
        assert not failed, failed


def test_a_service_that_is_down_gets_a_page_or_json_from_the_gateway(live_stack):
    gw = live_stack["url"]
    live_stack["procs"].stop("upload")
    try:
        page = requests.get(f"{gw}/upload/", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html"), page.text[:300]
        assert "Temporarily unavailable" in page.text and page.headers["Retry-After"] == "10"
        api = requests.get(f"{gw}/api/videos/mine", headers={"Accept": "text/html"}, timeout=10)
        assert api.status_code == 503 and api.json()["code"] == "service_unavailable"
        with chromium_page() as browser:
            browser.goto(f"{gw}/upload/")
            check_page(browser, "error-503", ("header a",), stylesheet=False)
    finally:
        restart_service(live_stack, "upload", live_stack["env"])
    assert requests.get(f"{gw}/upload/", allow_redirects=False, timeout=10).status_code == 303
