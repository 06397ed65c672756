"""A watch page that cannot play says so at once, with what to do, and opens nothing.

The suite served over plain HTTP on a host name (an ops team trying it on their network
before setting up HTTPS, docs/operations.md): browsers give WebCrypto only to secure pages
(HTTPS, or this computer's own address), and the player needs it for the device key, the key
exchange and every segment. Before, the page said "Connection problem ... check your internet
connection" and retried for ever (the missing API's TypeError was taken for a failed fetch).

A browser without Media Source Extensions (old ones; iPhones before iOS 17.1): before, the
viewer learnt it only after pressing play, as "Playback failed ... (no MSE)" with a Try again
that could never work."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.browser import chromium_page
from tests.support.page_checks import check_page, login
from tests.support.videos import register_user, sql

pytestmark = [pytest.mark.browser, pytest.mark.heavy]
HOST = "streamvault.test"       # resolved to the loopback gateway, but not "potentially trustworthy"


def _sessions(mdb, user: dict) -> int:
    return sql(mdb, "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s", (user["id"],), one=True)["n"]


def test_plain_http_on_a_host_name_says_https_is_needed(play, videos, mdb):
    gw = f"http://{HOST}:{urlsplit(play['url']).port}"
    user = register_user(play["url"], "insecure")
    with chromium_page((f"--host-resolver-rules=MAP {HOST} 127.0.0.1",)) as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        assert page.evaluate("window.isSecureContext") is False
        page.wait_for_selector("#overlay:not([hidden])")            # at once, before any click
        assert page.get_attribute("#overlay", "data-code") == "insecure_page"
        assert page.text_content("#overlay-title") == "This page needs HTTPS"
        assert "https://" in page.text_content("#overlay-text")
        assert page.is_hidden("#overlay-retry") and page.is_hidden("#play") and page.is_disabled("#ctl-play")
        assert "needs HTTPS" in page.text_content("#security-state")    # not "Protections start when you press play"
        page.keyboard.press("Space")          # no play intent opens anything (checked below, after the page checks)
        check_page(page, "player-insecure-page")
        assert page.evaluate("svPlayback.sessions") == 0
        # Download (when the owner allows it) needs a session too: it says the same.
        sql(mdb, "UPDATE videos SET downloads_allowed = 1 WHERE id = %s", (videos["public"],))
        try:
            page.reload()
            page.click("#download")
            page.wait_for_selector("#download-status:has-text('This page needs HTTPS')")
        finally:
            sql(mdb, "UPDATE videos SET downloads_allowed = 0 WHERE id = %s", (videos["public"],))
        assert _sessions(mdb, user) == 0


def test_a_browser_without_media_source_says_which_browsers_play(play, videos, mdb):
    user = register_user(play["url"], "nomse")
    with chromium_page() as page:
        # An old browser: no MediaSource of any kind, and no native HLS either.
        page.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource; "
                             "delete window.WebKitMediaSource; HTMLMediaElement.prototype.canPlayType = () => '';")
        login(page, play["url"], user, f"/watch/{videos['public']}")
        page.wait_for_selector("#overlay:not([hidden])")            # at once, before any click
        assert page.get_attribute("#overlay", "data-code") == "unsupported_browser"
        assert page.text_content("#overlay-title") == "This browser can't play these videos"
        assert "Chrome, Edge, Firefox or Safari" in page.text_content("#overlay-text")
        assert page.is_hidden("#overlay-retry") and page.is_hidden("#play") and page.is_disabled("#ctl-play")
        assert "cannot play protected videos" in page.text_content("#security-state")
        page.keyboard.press("Space")          # checked below, after the page checks
        check_page(page, "player-unsupported-browser")
        assert _sessions(mdb, user) == 0
