"""The account page and the reset flow in real Chromium through the gateway, at desktop and
phone sizes: password change with the strength hint, a device revoked, sign out everywhere,
an admin-issued reset link used once."""
from __future__ import annotations

import pytest
import requests

from tests.support.browser import chromium_page
from tests.support.dpop import FINGERPRINT, DeviceKey
from tests.support.page_checks import asset_log, check_page, login
from tests.support.videos import register_user

pytestmark = pytest.mark.browser
HEADER = ("header .brand", "#logout-form button")


def _device(gw, user):
    key = DeviceKey()
    url = f"{gw}/api/auth/device-token"
    resp = requests.post(url, json={"fingerprint": FINGERPRINT}, timeout=10,
                         headers={"Authorization": f"Bearer {user['access_token']}", "DPoP": key.proof("POST", url)})
    assert resp.status_code == 200, resp.text
    return resp.json()["device_id"]


def test_account_page_password_devices_and_sign_out_everywhere(live_stack):
    gw = live_stack["url"]
    user = register_user(gw, "acct")
    device = _device(gw, user)
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, user, "/auth/account")
        page.click("header .who")                                  # the header's way to the account page
        page.wait_for_url(f"{gw}/auth/account")
        assert page.locator(f"[data-device='{device}']").is_visible()
        check_page(page, "account", (*HEADER, "#password-form button", f"[data-device='{device}'] button",
                                     "#sign-out-everywhere"))
        # Password change: the hint says why before submitting; every error at once after.
        page.fill("input[name=current_password]", "not my password")
        page.fill("input[name=new_password]", "qwertyuiop")
        page.wait_for_function("() => document.getElementById('new_password-strength').textContent.includes('common')")
        page.click("#password-form button")
        assert "Current password is wrong." in page.inner_text("#form-errors")
        check_page(page, "account-errors", ("#password-form button",))
        page.fill("input[name=current_password]", user["password"])
        page.fill("input[name=new_password]", "a much better passphrase")
        page.click("#password-form button")
        assert "Your password has been changed" in page.inner_text("#flash")
        assert requests.post(f"{gw}/api/auth/refresh", json={"refresh_token": user["refresh_token"]},
                             timeout=10).status_code == 401       # the other session is gone
        # Revoke the device (keyboard: focus its button, Enter).
        page.focus(f"[data-device='{device}'] button")
        page.keyboard.press("Enter")
        page.wait_for_selector("#flash")
        assert "revoked" in page.inner_text(f"[data-device='{device}']")
        page.click("#sign-out-everywhere")
        page.wait_for_url(f"{gw}/auth/login")
        assert "signed out on every device" in page.inner_text("#flash")
        assert not failed, failed


def test_admin_reset_link_flow(live_stack):
    gw = live_stack["url"]
    user = register_user(gw, "rst")
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]},
                          timeout=10).json()["access_token"]
    link = requests.post(f"{gw}/api/admin/users/{user['id']}/reset-link", timeout=10,
                         headers={"Authorization": f"Bearer {admin}"}).json()
    assert link["url"].startswith(gw + "/auth/reset/")
    with chromium_page() as page, asset_log(page) as failed:
        page.goto(link["url"])
        check_page(page, "reset", ("input[name=password]", "#reset-form button"))
        page.fill("input[name=password]", "reset in the browser")
        page.click("#reset-form button")
        page.wait_for_url(f"{gw}/auth/login")
        assert "Your password has been reset" in page.inner_text("#flash")
        page.goto(link["url"])                                     # used: refused
        page.wait_for_url(f"{gw}/auth/login")
        assert "invalid, used or expired" in page.inner_text("#flash")
        assert not failed, failed
    assert requests.post(f"{gw}/api/auth/login", json={"username": user["username"], "password": "reset in the browser"},
                         timeout=10).status_code == 200


def test_admin_users_page(live_stack):
    gw = live_stack["url"]
    user = register_user(gw, "adm")
    admin = {"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]}
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, admin, "/admin/users")
        check_page(page, "admin-users", (*HEADER, "#q", "form.search button"))
        page.fill("#q", user["username"])
        page.keyboard.press("Enter")
        page.wait_for_selector(f"[data-user='{user['username']}']")
        row = page.locator(f"[data-user='{user['username']}']")
        assert page.locator("[data-user]").count() == 1
        row.locator("select").select_option("uploader")
        row.locator("button", has_text="Save").click()
        assert page.inner_text("#flash") == "The user has been updated."
        row.locator("button", has_text="Disable").click()
        page.wait_for_selector(f"[data-user='{user['username']}'] .badge.bad")
        assert requests.post(f"{gw}/api/auth/login", json={"username": user["username"], "password": user["password"]},
                             timeout=10).status_code == 403     # at once
        row.locator("button", has_text="Reset link").click()
        assert page.input_value("#issued-url").startswith(gw + "/auth/reset/")
        check_page(page, "admin-users-actions", ("#issued-url", "#copy-reset", f"[data-user='{user['username']}'] select"))
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw)
        page.click("#copy-reset")
        page.wait_for_function("() => document.getElementById('copy-reset').textContent === 'Copied'")
        assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#issued-url")
        assert not failed, failed
