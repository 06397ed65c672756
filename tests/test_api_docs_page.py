"""/api/docs in real Chromium through the gateway: Swagger UI (from npm, served by
streaming-svc) loads under the page's CSP, renders the merged document's operations and
passes the shared page checks (assets, overflow, axe-core, screenshots)."""
from __future__ import annotations

import pytest

from tests.support.browser import chromium_page
from tests.support.page_checks import asset_log, check_page

pytestmark = pytest.mark.browser


def test_api_reference_page(live_stack):
    gw = live_stack["url"]
    with chromium_page() as page, asset_log(page) as failed:
        refused: list[str] = []
        page.on("console", lambda msg: refused.append(msg.text)   # (the browser's favicon probe 404s: not ours)
                if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
        page.goto(f"{gw}/api/docs")
        page.wait_for_selector(".opblock-tag", timeout=30_000)
        tags = page.locator(".opblock-tag").all_inner_texts()
        assert any("tus" in t for t in tags) and any("playback" in t for t in tags), tags
        page.locator(".opblock-tag", has_text="auth").first.click()
        page.wait_for_selector("[id^='operations-auth-post__api_auth_login']", timeout=10_000)
        check_page(page, "api-docs", (".opblock-tag",))
        assert not failed, failed
        assert not refused, refused
