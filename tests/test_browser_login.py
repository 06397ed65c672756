"""A person logs in through the login page in real Chromium and lands where they wanted to go."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.support.browser import chromium_page

pytestmark = pytest.mark.browser


def test_login_page_redirects_to_target(live_stack):
    gw = live_stack["url"]
    name = "br_" + uuid.uuid4().hex[:8]
    assert requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@e.test",
                                                          "password": "browser password"}).status_code == 201
    with chromium_page() as page:
        page.goto(f"{gw}/auth/login?redirect=/api/auth/profile")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", "browser password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{gw}/api/auth/profile")
        profile = json.loads(page.inner_text("body"))
        assert profile["username"] == name
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["sv_access"]["httpOnly"] and cookies["sv_refresh"]["httpOnly"]
        assert page.evaluate("document.cookie").find("sv_access") == -1   # invisible to scripts


def test_wrong_password_shows_message(live_stack):
    gw = live_stack["url"]
    with chromium_page() as page:
        page.goto(f"{gw}/auth/login?redirect=//evil.example")
        page.fill("input[name=username]", "nobody_" + uuid.uuid4().hex[:6])
        page.fill("input[name=password]", "definitely wrong")
        page.click("button[type=submit]")
        assert "wrong username or password" in page.inner_text("#form-errors")
        assert page.input_value("input[name=redirect]") == "/"
