"""A person logs in through the login page in real Chromium and lands where they wanted to go."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.support.browser import BLOCK_COOKIES, chromium_page, screenshots
from tests.support.page_checks import check_page

pytestmark = pytest.mark.browser


def test_login_page_redirects_to_target(live_stack):
    gw = live_stack["url"]
    name = "br_" + uuid.uuid4().hex[:8]
    assert requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@e.test",
                                                          "password": "browser password"}).status_code == 201
    with chromium_page() as page:
        page.goto(f"{gw}/auth/login?redirect=/api/auth/profile")
        assert page.is_hidden("#sv-cookies-blocked")                      # cookies work here
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", "browser password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{gw}/api/auth/profile")
        profile = json.loads(page.inner_text("body"))
        assert profile["username"] == name
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["sv_access"]["httpOnly"] and cookies["sv_refresh"]["httpOnly"]
        assert page.evaluate("document.cookie").find("sv_access") == -1   # invisible to scripts
        assert "sv_cookie_probe" not in cookies                           # the pages' cookie test leaves none


def test_a_browser_blocking_cookies_is_told_so(live_stack):
    """A browser set to block cookies can never sign in: the page says so at once, and the form's
    refusal says why (before, "Your form expired; please try again" at every try, for ever)."""
    gw = live_stack["url"]
    with chromium_page(preferences=BLOCK_COOKIES) as page:
        page.goto(f"{gw}/auth/login")
        assert page.is_visible("#sv-cookies-blocked")                     # at once, before any try
        assert "allow cookies for this site" in page.inner_text("#sv-cookies-blocked")
        check_page(page, "login-cookies-blocked")
        page.fill("input[name=username]", "nobody_" + uuid.uuid4().hex[:6])
        page.fill("input[name=password]", "any password at all")
        page.click("button[type=submit]")
        page.wait_for_selector("#form-errors")
        assert "blocks them" in page.inner_text("#form-errors")
        assert "expired" not in page.inner_text("#form-errors")
        assert page.is_hidden("#sv-cookies-blocked")                      # said once, not twice
        assert page.context.cookies() == []                               # the browser really blocked them
        check_page(page, "login-cookies-blocked-refused")


def test_wrong_password_shows_message(live_stack):
    gw = live_stack["url"]
    with chromium_page() as page:
        page.goto(f"{gw}/auth/login?redirect=//evil.example")
        page.fill("input[name=username]", "nobody_" + uuid.uuid4().hex[:6])
        page.fill("input[name=password]", "definitely wrong")
        page.click("button[type=submit]")
        assert "wrong username or password" in page.inner_text("#form-errors")
        assert page.input_value("input[name=redirect]") == "/"


def test_without_javascript_pages_say_so_and_logout_still_works(live_stack):
    """A browser that runs no scripts: the pages that need them say so (before: the library said
    "Loading…" for ever and the player's buttons did nothing), the form pages don't need them,
    and Log out works (before: its CSRF field was filled by a script, so it was refused)."""
    gw = live_stack["url"]
    name = "nojs_" + uuid.uuid4().hex[:8]
    assert requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@e.test",
                                                          "password": "browser password"}).status_code == 201
    with chromium_page(javascript=False) as page:
        page.goto(f"{gw}/auth/login")
        assert page.locator("#sv-needs-js").count() == 0                 # the login form works without
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", "browser password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{gw}/")
        for path in ("/", "/upload/", "/webhooks"):
            page.goto(gw + path)
            assert page.is_visible("#sv-needs-js"), path
            assert "needs JavaScript" in page.inner_text("#sv-needs-js")
        screenshots(page, "no-javascript-webhooks")
        page.goto(f"{gw}/auth/account")
        assert page.locator("#sv-needs-js").count() == 0
        page.click("#logout-form button[type=submit]")
        page.wait_for_url(f"{gw}/auth/login")
        assert "Logout refused" not in page.inner_text("main")
        assert not {"sv_access", "sv_refresh"} & {c["name"] for c in page.context.cookies()}
