"""A viewer whose computer clock is wrong: a dual-boot machine whose clock keeps local time
(hours off), a PC that never synchronises (minutes off), or a clock changed while the page is
open. The server holds a DPoP proof's ``iat`` to DPOP_MAX_AGE_SECONDS (60 s) of its own clock,
so before, such a viewer could not play anything ("DPoP proof is stale or from the future"),
and the library said a video was uploaded "in 2 h". Pages now work on the server's clock
(svclient.js SV.now(): the time the layout was made, corrected by each answer's Date header).
"""
from __future__ import annotations

import re
import time

import pytest

from tests.support.browser import chromium_page, watch_until
from tests.support.page_checks import login
from tests.support.videos import register_user

pytestmark = [pytest.mark.browser, pytest.mark.heavy]
PLAYING = "(() => { const v = document.getElementById('video'); return !v.paused && v.currentTime > 1; })()"


@pytest.mark.parametrize("skew_s,when", [(2 * 3600, "before the page"), (-5 * 60, "before the page"),
                                         (2 * 3600, "while the page is open")])
def test_a_wrong_computer_clock_still_plays(play, videos, skew_s, when):
    gw = play["url"]
    user = register_user(gw, "clock")
    with chromium_page() as page:
        login(page, gw, user, "/")
        if when == "before the page":
            page.clock.set_system_time(time.time() + skew_s)
            page.goto(f"{gw}/")
            page.wait_for_selector("#grid .uploaded time")
            uploaded = page.text_content("#grid .uploaded time")
            # Uploaded minutes ago, whatever this computer says (before: "2 h ago", "in 4 min").
            assert re.fullmatch(r"just now|\d+ min ago", uploaded), uploaded
            page.goto(f"{gw}/watch/{videos['public']}")
        else:
            # The page got its device token on the right clock, then the computer's clock
            # jumps: the next proof (the token's renewal, its time now looking past) is refused,
            # that answer's Date sets the page's clock, and the proof made again is taken.
            answers = []
            page.on("response", lambda r: answers.append(r.status) if "/api/auth/device-token" in r.url else None)
            page.goto(f"{gw}/watch/{videos['public']}")
            page.evaluate("Device.accessToken().then(() => true)")      # (waits for the page's own fetch)
            page.clock.set_system_time(time.time() + skew_s)
        page.click("#play")
        watch_until(page, PLAYING)
        assert page.evaluate("svPlayback.errors") == []
        assert abs(page.evaluate("SV.now()") / 1000 - time.time()) < 10
        if when != "before the page":
            assert answers == [200, 401, 200], answers
