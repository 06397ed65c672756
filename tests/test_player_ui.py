"""The watch page's player in real Chromium (issue #16 item 1): playback starts from the first
intent (the video, the bar's play control, Space), the keyboard map, the quality menu really
switching the variant, the captions menu, errors as a focused overlay on the video with what to
do (stream limit, revoked access, network), a lost connection ridden out (resumed by itself), the
session ended when the page goes (the stream
limit frees at once), the uploader/date/share byline, a "still processing" page that opens the
player by itself, and the plain-language live security panel. Screenshots under
var/test/screenshots/ (player-*)."""
from __future__ import annotations

import pytest

from tests.support.browser import chromium_page, screenshots, watch_until
from tests.support.contract_client import ContractError
from tests.support.delivery import wait_for
from tests.support.page_checks import CHECKED_SIZES, SIZES, check_page, login
from tests.support.playback import PLAYBACK_ENV, viewer
from tests.support.videos import register_user, sql

pytestmark = [pytest.mark.browser, pytest.mark.heavy]
CLIP_SECONDS = 16
LIMIT = int(PLAYBACK_ENV["MAX_CONCURRENT_STREAMS"])
PLAYING = "(() => { const v = document.getElementById('video'); return !v.paused && v.currentTime > 1; })()"
OVERLAY = "document.getElementById('overlay').hidden === false"


def overlay(page) -> dict:
    return page.evaluate("""() => { const o = document.getElementById('overlay');
        return { code: o.dataset.code, role: o.getAttribute('role'), focused: document.activeElement === o,
                 title: document.getElementById('overlay-title').textContent,
                 text: document.getElementById('overlay-text').textContent,
                 retry: !document.getElementById('overlay-retry').hidden,
                 library: !document.getElementById('overlay-library').hidden }; }""")


def open_elsewhere(api, mdb, video_id: str, count: int) -> list:
    """``count`` sessions of the same user on another device, kept live for this test (the test
    stack's session TTL is 8 s: their expiry is set in the database instead of heartbeats)."""
    sessions = [api.open_session(video_id) for _ in range(count)]
    for s in sessions:
        sql(mdb, "UPDATE playback_sessions SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 10 MINUTE WHERE id = %s", (s.id,))
    return sessions


def live_sessions(mdb, user_id: str) -> int:
    return sql(mdb, "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s AND ended_at IS NULL "
                    "AND expires_at > UTC_TIMESTAMP(6)", (user_id,), one=True)["n"]


def ended_by_client(mdb, user_id: str) -> int:
    return sql(mdb, "SELECT COUNT(*) AS n FROM playback_sessions WHERE user_id = %s AND end_reason = 'ended_by_client'",
               (user_id,), one=True)["n"]


@pytest.mark.parametrize("intent", ["space", "video", "bar"])
def test_first_intent_starts_playback(play, videos, intent):
    """Before: only the custom ▶ did anything. Now the video, the bar's ▶ and Space open the
    session and play, with one session."""
    gw = play["url"]
    user = register_user(gw, "intent")
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        if intent == "space":
            page.keyboard.press("Space")
        elif intent == "video":
            page.click("#video", position={"x": 60, "y": 60})    # away from the big ▶ in the middle
        else:
            page.click("#ctl-play")
        watch_until(page, PLAYING)
        assert page.evaluate("svPlayback.sessions") == 1
        assert page.get_attribute("#ctl-play", "aria-label") == "Pause"


def test_keyboard_controls(play, videos):
    gw = play["url"]
    user = register_user(gw, "keys")
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        page.keyboard.press("k")
        watch_until(page, PLAYING)
        page.keyboard.press("Space")
        watch_until(page, "document.getElementById('video').paused")
        t0 = page.evaluate("document.getElementById('video').currentTime")
        page.keyboard.press("ArrowRight")
        watch_until(page, f"Math.abs(document.getElementById('video').currentTime - {t0 + 5}) < 0.3")
        page.keyboard.press("ArrowLeft")
        watch_until(page, f"Math.abs(document.getElementById('video').currentTime - {t0}) < 0.3")
        page.keyboard.press("ArrowDown")               # on the page itself, Up/Down scroll it
        assert page.evaluate("document.getElementById('video').volume") == pytest.approx(1.0)
        page.focus("#ctl-mute")                        # in the player they change the volume
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.getElementById('video').volume") == pytest.approx(0.9)
        page.keyboard.press("ArrowUp")
        assert page.evaluate("document.getElementById('video').volume") == pytest.approx(1.0)
        page.focus("#volume")                          # the volume slider keeps its own arrows
        t1 = page.evaluate("document.getElementById('video').currentTime")
        page.keyboard.press("ArrowLeft")
        assert page.evaluate("document.getElementById('video').volume") == pytest.approx(0.95)
        assert abs(page.evaluate("document.getElementById('video').currentTime") - t1) < 1
        page.focus("header a")                         # elsewhere keys keep their own meaning
        page.keyboard.press("m")
        assert page.evaluate("document.getElementById('video').muted") is False
        page.focus("#ctl-mute")
        page.keyboard.press("m")
        assert page.evaluate("document.getElementById('video').muted") is True
        assert page.get_attribute("#ctl-mute", "aria-label") == "Unmute"
        page.keyboard.press("m")
        assert page.evaluate("document.getElementById('video').muted") is False
        page.keyboard.press("c")     # no caption tracks yet: a hint, nothing breaks
        assert "No captions" in page.inner_text("#hint")
        page.keyboard.press("f")
        watch_until(page, "document.fullscreenElement === document.getElementById('player')", timeout_s=5)
        page.keyboard.press("f")
        watch_until(page, "document.fullscreenElement === null", timeout_s=5)
        page.keyboard.press("k")
        watch_until(page, PLAYING)
        assert page.evaluate("svPlayback.errors") == []


def test_speed_menu_offers_what_the_key_pace_sustains(play, videos):
    """Speeds up to KEY_PACE_FACTOR (1.5: keys are released at 1.5x real time after a burst),
    from the menu and Shift+. / Shift+,; kept across a seek (shaka holds the rate at 0 while
    it buffers); a faster rate set another way (an extension) plays, and the viewer is told
    that it will wait for keys now and then."""
    gw = play["url"]
    user = register_user(gw, "speed")
    rate = "document.getElementById('video').playbackRate"
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        assert page.inner_text("#ctl-speed") == "1×"
        page.click("#play")
        watch_until(page, PLAYING)
        page.click("#ctl-speed")
        offered = page.eval_on_selector_all("#speed-menu [role=menuitemradio]",
                                            "els => els.map(e => [e.dataset.rate, e.textContent, e.ariaChecked])")
        assert offered == [["0.5", "0.5×", "false"], ["0.75", "0.75×", "false"], ["1", "Normal", "true"],
                           ["1.25", "1.25×", "false"], ["1.5", "1.5×", "false"]], offered
        page.click("#speed-menu [data-rate='1.5']")
        assert page.evaluate(rate) == 1.5 and page.inner_text("#hint") == "Speed: 1.5×"
        watch_until(page, "document.getElementById('ctl-speed').textContent === '1.5×'", timeout_s=5)
        assert page.get_attribute("#ctl-speed", "aria-label") == "Speed: 1.5×"
        page.evaluate("document.getElementById('video').currentTime = 2")
        watch_until(page, "(() => { const v = document.getElementById('video'); "
                          "return !v.seeking && !v.paused && v.currentTime > 2.5; })()")
        assert page.evaluate(rate) == 1.5 and page.inner_text("#ctl-speed") == "1.5×"
        page.keyboard.press("<")
        assert page.evaluate(rate) == 1.25
        page.keyboard.press(">")
        page.keyboard.press(">")                       # nothing past the pace
        assert page.evaluate(rate) == 1.5
        page.evaluate("document.getElementById('video').playbackRate = 2")
        # (a media element's ratechange is a queued task: the bar follows a moment later)
        watch_until(page, "document.getElementById('ctl-speed').textContent === '2×'", timeout_s=5)
        assert "Faster than 1.5×, this protected video pauses now and then" in page.inner_text("#hint")
        watch_until(page, PLAYING)
        screenshots(page, "player-speed-beyond-pace")
        assert page.evaluate("svPlayback.errors") == []


def test_quality_menu_switches_the_variant(play, videos):
    gw = play["url"]
    user = register_user(gw, "quality")
    active = "svPlayer().getVariantTracks().find(t => t.active).height"
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        page.click("#play")
        watch_until(page, PLAYING)
        page.click("#ctl-quality")
        assert page.get_attribute("#ctl-quality", "aria-expanded") == "true"
        heights = page.eval_on_selector_all("#quality-menu [role=menuitemradio]", "els => els.map(e => e.dataset.height)")
        assert heights[0] == "auto" and len(heights) >= 3, heights          # Auto + at least two rungs
        rungs = [int(h) for h in heights[1:]]
        assert rungs == sorted(rungs, reverse=True)
        assert page.get_attribute("#quality-menu [data-height=auto]", "aria-checked") == "true"
        # Each rung becomes shaka's active variant, ABR off, from whichever one ABR had picked.
        for height in sorted(rungs, key=lambda h: h == page.evaluate(active)):
            if page.locator("#quality-menu").is_hidden():
                page.click("#ctl-quality")
            page.click(f"#quality-menu [data-height='{height}']")
            watch_until(page, f"{active} === {height} && !svPlayer().getConfiguration().abr.enabled")
            assert page.inner_text("#ctl-quality") == f"{height}p"
        assert page.evaluate("svQoE.report().bitrate_switches") >= len(rungs) - 1   # what the QoE report counts
        page.click("#ctl-quality")
        page.click("#quality-menu [data-height=auto]")
        watch_until(page, "svPlayer().getConfiguration().abr.enabled")
        assert page.inner_text("#ctl-quality") == "Auto"
        # Captions: the menu is there and says there are none (captions come with another issue).
        page.click("#ctl-captions")
        assert page.inner_text("#captions-menu") == "No captions"
        page.keyboard.press("Escape")
        assert page.locator("#captions-menu").is_hidden()
        assert page.evaluate("svPlayback.errors") == []
        page.evaluate("(() => { const v = document.getElementById('video'); v.currentTime = 2; v.play(); })()")
        check_page(page, "player-playing", controls=("#ctl-play", "#ctl-quality", "#ctl-fullscreen", "#share"))
        # Every control inside the bar at each size (at 360 px the speed control once pushed
        # full screen past the player's edge, where the page itself did not overflow).
        for size, (width, height) in CHECKED_SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            out = page.evaluate("""() => { const bar = document.getElementById('controls').getBoundingClientRect();
                return [...document.querySelectorAll('#controls .ctl, #time')].filter((e) => e.offsetParent)
                  .filter((e) => { const r = e.getBoundingClientRect(); return r.right > bar.right + 0.5 || r.left < bar.left - 0.5; })
                  .map((e) => e.id); }""")
            assert out == [], f"{size}: {out} outside the control bar"
        page.set_viewport_size({"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]})
        page.click("#ctl-quality")
        check_page(page, "player-quality-menu", controls=("#quality-menu [data-height=auto]",))
        # The decoded picture follows a manual switch, and a seek right after it (this froze while
        # shaka prefetched segments: player.js turns that off).
        page.keyboard.press("Escape")
        height = rungs[-1]
        page.click("#ctl-quality")
        page.click(f"#quality-menu [data-height='{height}']")
        page.evaluate("(() => { const v = document.getElementById('video'); v.currentTime = 1; v.play(); })()")
        watch_until(page, f"document.getElementById('video').videoHeight === {height} "
                          "&& document.getElementById('video').currentTime > 1.5", timeout_s=20)


def test_stream_limit_is_an_overlay_with_what_to_do(play, videos, mdb):
    gw = play["url"]
    user, api = viewer(gw, "limit")
    elsewhere = open_elsewhere(api, mdb, videos["public"], LIMIT)
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        page.click("#play")
        watch_until(page, OVERLAY)
        o = overlay(page)
        assert o["code"] == "stream_limit" and o["role"] == "alert" and o["focused"], o
        assert f"You're watching on {LIMIT} other devices" in o["text"] and "stop one" in o["text"], o
        assert o["retry"] and page.locator("#overlay-help").is_visible()
        check_page(page, "player-error-overlay", controls=("#overlay-retry", "#overlay-help"))
        page.keyboard.press("Space")          # no silent reset: the overlay stays until acted on
        assert page.evaluate(OVERLAY)
        api.end(elsewhere[0])                 # the viewer stops one…
        page.click("#overlay-retry")          # …and tries again
        watch_until(page, PLAYING)
        assert page.locator("#overlay").is_hidden()


def test_revoked_access_and_network_errors_are_overlays(play, videos, mdb):
    gw = play["url"]
    user = register_user(gw, "errs")
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        # Network: every segment request fails; the overlay says so, Try again resumes.
        media = {"up": False}
        page.route("**/media/**", lambda route: route.continue_() if media["up"] else route.abort())
        page.expose_function("svTestMediaUp", lambda: media.update(up=True))
        page.click("#play")
        watch_until(page, OVERLAY)
        o = overlay(page)
        assert o["code"] == "network" and o["title"] == "Connection problem" and o["retry"] and o["focused"], o
        # The segments come back and Try again is pressed in one step: the player also tries
        # again by itself (2 s, doubling), and a separate unroute then click raced that timer
        # (the overlay gone before the click). No answer can land between these two lines.
        shown = page.evaluate("""async () => { await svTestMediaUp();
            const shown = !document.getElementById('overlay').hidden;
            document.getElementById('overlay-retry').click(); return shown; }""")
        assert shown
        watch_until(page, PLAYING)
        # Revoked while playing (e.g. the owner changed the password): said on the video.
        sql(mdb, "UPDATE playback_sessions SET ended_at = UTC_TIMESTAMP(6), end_reason = 'access_revoked' "
                 "WHERE user_id = %s AND ended_at IS NULL", (user["id"],))
        watch_until(page, OVERLAY)
        o = overlay(page)
        assert o["code"] == "access_revoked" and "no longer have access" in o["text"], o
        assert o["library"] and not o["retry"] and o["focused"], o


def test_playback_rides_out_a_lost_connection(play, videos):
    """The connection goes while playing (the browser offline): the buffer plays out, the
    overlay then says the viewer is offline, and once back online playback resumes by itself
    where it stopped (no click; the session, expired meanwhile, renewed at that position). A gateway that fails
    the segments while the browser is online (an outage) is retried by itself too: the
    overlay says so, and the picture comes back without a click once the segments do.
    Before, the first failed segment stopped playback with 10 s still buffered, ended the
    session and waited for Try again."""
    gw = play["url"]
    user = register_user(gw, "offline")
    time_now = "document.getElementById('video').currentTime"
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        page.click("#play")
        watch_until(page, f"{time_now} > 1")
        page.context.set_offline(True)
        watch_until(page, OVERLAY, 60)                    # once the buffer has run out
        o = overlay(page)
        assert o["code"] == "offline" and o["title"] == "You're offline" and o["retry"] and o["focused"], o
        assert page.text_content("#security-state").startswith("Reconnecting")
        stopped_at = page.evaluate(time_now)
        assert stopped_at > 3, stopped_at                 # the buffer played on after the loss
        check_page(page, "player-offline", controls=("#overlay-retry",))
        page.context.set_offline(False)
        watch_until(page, f"{time_now} > {stopped_at + 1}", 60)
        assert page.evaluate("document.getElementById('overlay').hidden")
        watch_until(page, "document.getElementById('security-state').textContent.startsWith('Protected and live')")
        # Offline longer than this stack's 8-s session life: renewed once, at the position.
        assert page.evaluate("[svPlayback.sessions, svPlayback.renewals]") == [2, 1]
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        page.route("**/media/**", lambda route: route.abort())
        page.click("#play")
        watch_until(page, OVERLAY, 60)
        o = overlay(page)
        assert o["code"] == "network" and o["title"] == "Connection problem" and "by itself" in o["text"], o
        page.unroute("**/media/**")
        watch_until(page, PLAYING, 60)                    # no click: its timer tried again
        assert page.evaluate("document.getElementById('overlay').hidden")


def test_closing_the_page_frees_the_stream_limit_at_once(play, videos, mdb):
    """LIMIT-1 sessions elsewhere, one in the page: the limit is full. Closing the tab ends its
    session (keepalive DELETE on pagehide), so a second page starts at once — not after the
    session TTL."""
    gw = play["url"]
    user, api = viewer(gw, "closer")
    open_elsewhere(api, mdb, videos["public"], LIMIT - 1)
    with chromium_page() as first:
        login(first, gw, user, f"/watch/{videos['public']}")
        first.click("#play")
        watch_until(first, PLAYING)
        assert live_sessions(mdb, user["id"]) == LIMIT
        second = first.context.new_page()
        second.goto(f"{gw}/watch/{videos['public']}")
        second.click("#play")
        watch_until(second, OVERLAY)
        assert overlay(second)["code"] == "stream_limit"
        first.close(run_before_unload=True)
        # At once: the DELETE sent on pagehide has ended the closed page's session.
        wait_for(lambda: ended_by_client(mdb, user["id"]) == 1, timeout_s=5)
        assert live_sessions(mdb, user["id"]) == LIMIT - 1
        second.click("#overlay-retry")
        watch_until(second, PLAYING)
        with pytest.raises(ContractError):     # the limit still holds: the second page took the place
            api.open_session(videos["public"])


def test_byline_share_and_singular_views(play, videos, owner, mdb):
    gw = play["url"]
    user = register_user(gw, "byline")
    vid = videos["public"]
    views = sql(mdb, "SELECT views FROM videos WHERE id = %s", (vid,), one=True)["views"]
    sql(mdb, "UPDATE videos SET views = 1 WHERE id = %s", (vid,))
    try:
        with chromium_page() as page:
            page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw)
            login(page, gw, user, f"/watch/{vid}")
            assert page.inner_text("#uploader") == owner["username"]
            assert page.get_attribute("#uploaded", "datetime").endswith("Z")
            assert page.inner_text("#views") == "1 view"
            page.click("#share")
            page.wait_for_selector("#share[data-copied=true]")
            assert page.inner_text("#share-status") == "Link copied."
            assert page.evaluate("navigator.clipboard.readText()") == f"{gw}/watch/{vid}"
            sql(mdb, "UPDATE videos SET views = 2 WHERE id = %s", (vid,))
            page.reload()
            assert page.inner_text("#views") == "2 views"
    finally:
        sql(mdb, "UPDATE videos SET views = %s WHERE id = %s", (views, vid))


def test_processing_page_opens_the_player_when_ready(play, videos, mdb):
    gw = play["url"]
    user = register_user(gw, "waiter")
    vid = videos["public"]
    sql(mdb, "UPDATE videos SET status = 'processing' WHERE id = %s", (vid,))
    try:
        with chromium_page() as page:
            login(page, gw, user, "/")
            resp = page.goto(f"{gw}/watch/{vid}")
            assert resp.status == 409 and page.inner_text("#message-title") == "Still processing"
            assert page.evaluate(f"fetch('/api/library/{vid}').then(r => r.json()).then(j => j.status)") == "processing"
            sql(mdb, "UPDATE videos SET status = 'ready' WHERE id = %s", (vid,))
            page.wait_for_selector("#watch #play", timeout=15000)    # reloaded by itself into the player
            assert page.url == f"{gw}/watch/{vid}"
    finally:
        sql(mdb, "UPDATE videos SET status = 'ready' WHERE id = %s", (vid,))


def test_security_panel_is_plain_and_live(play, videos):
    gw = play["url"]
    user = register_user(gw, "secpanel")
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{videos['public']}")
        assert "start when you press play" in page.inner_text("#security-state")
        page.click("#play")
        watch_until(page, "!document.getElementById('security-body').hidden")
        text = page.inner_text("#security")
        assert "{" not in text and "Protected and live" in text, text
        assert "(this browser)" in page.inner_text("#sec-device")
        assert "Chrom" in page.inner_text("#sec-device") and "screen " in page.inner_text("#sec-device")
        for words in ("Encrypted at rest", "Per-session keys", "Forensic watermark", "Device binding"):
            assert words in page.inner_text("#sec-protections")
        # KEY_ROTATION_SECONDS=4 and heartbeats every 2 s: an epoch change shows up as it happens.
        watch_until(page, "document.getElementById('sec-log').innerText.includes('key changed')")
        assert "Key #" in page.inner_text("#sec-epoch") and "Key #0." not in page.inner_text("#sec-epoch")
        page.locator("#security").scroll_into_view_if_needed()
        check_page(page, "player-security", controls=("#share",))
