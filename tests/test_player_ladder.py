"""A viewer who starts watching while the higher rungs are still encoding: when a rung joins
the ladder (the video is published at 360p first, then 480p), the player in real Chromium
offers it without a reload of the page, in the same session. A player playing its top rung
with ABR on loads the grown manifest at the position and plays on at 480p; one whose viewer
pinned 360p is not interrupted, and takes the new manifest at the next pause, keeping the
viewer's choice. The storyboard, made after the ladder, reaches both: the pinned player adds it
as a thumbnails track while it plays, with no reload. The reload's wait is not a stall in QoE."""
from __future__ import annotations

import pytest

from svcommon.db import query
from tests.support.browser import SCREENSHOTS, chromium_page, screenshots, watch_until
from tests.support.media import make_clip
from tests.support.videos import queue_video, register_user, run_video
from tests.test_chunk_jobs import plan_in_chunks, renditions, video
from tests.test_playback_browser import login
from tests.test_storyboards import hover

pytestmark = [pytest.mark.browser, pytest.mark.heavy, pytest.mark.usefixtures("own_jobs")]

HEIGHTS = "svPlayer().getVariantTracks().map((t) => t.height).sort((a, b) => a - b)"
ACTIVE = "(svPlayer().getVariantTracks().find((t) => t.active) || {}).height"
STATE = ("({t: document.getElementById('video').currentTime, paused: document.getElementById('video').paused, "
         f"heights: {HEIGHTS}, active: {ACTIVE}, abr: svPlayer().getConfiguration().abr.enabled, "
         "loads: svPlayback.ladderLoads, sessions: svPlayback.sessions, renewals: svPlayback.renewals, "
         "beats: svPlayback.heartbeats, errors: svPlayback.errors, boards: svPlayer().getImageTracks().length, "
         "added: svPlayback.storyboardsAdded, stalls: svQoE.report().rebuffer_count})")


def higher_chunks_left(db, vid) -> int:
    return query(db, "SELECT COUNT(*) AS n FROM video_chunks WHERE video_id = %s AND rung = '480p' "
                     "AND result IS NULL", (vid,), one=True)["n"]


def test_a_rung_that_finishes_while_viewers_watch_joins_their_players(play, worker_app, db, stores, owner, tmp_path):
    # 40 s in chunks of 4 segments (8 s): the viewers play on well past the last chunk's encode.
    clip = make_clip(tmp_path / "growing.mp4", seconds=40).read_bytes()
    vid = queue_video(db, stores, owner["id"], clip, title="Growing ladder")
    plan_in_chunks(worker_app, db, vid, segments=4)
    # Published at 360p, with all but one of the 480p chunks done: the last one publishes 480p.
    run_video(worker_app, db, vid,
              until=lambda: video(db, vid)["status"] == "ready" and higher_chunks_left(db, vid) == 1)
    assert renditions(db, vid) == (["360p"], False)
    gw = play["url"]
    user = register_user(gw, "ladder")
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{vid}")
        pinned = page.context.new_page()
        pinned.goto(f"{gw}/watch/{vid}")
        for p in (page, pinned):
            p.click("#play")
            watch_until(p, "document.getElementById('video').currentTime > 1")
            assert p.evaluate(HEIGHTS) == [360]
        # The second viewer picks 360p themselves (ABR off).
        pinned.click("#ctl-quality")
        pinned.click("#quality-menu [data-height='360']")
        watch_until(pinned, "!svPlayer().getConfiguration().abr.enabled")
        before = page.evaluate(STATE)
        assert before["boards"] == 0 and pinned.evaluate(STATE)["boards"] == 0, before    # no storyboard yet

        run_video(worker_app, db, vid)
        assert renditions(db, vid) == (["480p", "360p"], True)

        # Playing its top rung with ABR on: the grown manifest is loaded where it plays, in the
        # same session, and ABR takes 480p.
        watch_until(page, f"{ACTIVE} === 480", timeout_s=40)
        watch_until(page, f"document.getElementById('video').currentTime > {before['t'] + 2}")
        after = page.evaluate(STATE)
        assert after["heights"] == [360, 480] and after["loads"] == 1 and not after["paused"], after
        assert after["sessions"] == 1 and after["renewals"] == 0 and after["errors"] == [], after
        # The reload's wait for the picture is not a stall; the grown manifest has the storyboard.
        assert after["stalls"] == 0 and after["boards"] == 1, after
        # The viewer is told why the picture paused a moment (hint and live region).
        assert page.evaluate("document.getElementById('sv-announce').textContent") == "Now up to 480p"
        screenshots(page, "watch-ladder-grown")

        # The viewer who chose 360p, still playing, is not interrupted: several heartbeats
        # after the new rung was offered, nothing was loaded.
        beats = pinned.evaluate("svPlayback.heartbeats")
        watch_until(pinned, f"svPlayback.heartbeats >= {beats + 3}")
        kept = pinned.evaluate(STATE)
        assert kept["loads"] == 0 and kept["heights"] == [360] and not kept["paused"], kept
        # but the storyboard was added as it played: the seek bar's preview shows its tiles.
        assert kept["boards"] == 1 and kept["added"] == 1 and kept["errors"] == [], kept
        seen = hover(pinned, 10.0)
        assert "/storyboard/" in seen["image"] and seen["inside"], seen
        pinned.locator("#player").screenshot(path=str(SCREENSHOTS / "player-storyboard-late.png"))
        # At their pause it is loaded, and their choice is kept.
        at = pinned.evaluate("(() => { const v = document.getElementById('video'); v.pause(); "
                             "return v.currentTime; })()")
        watch_until(pinned, "svPlayback.ladderLoads === 1")
        # (shaka's load resolves before its start position is applied to a paused element)
        watch_until(pinned, f"Math.abs(document.getElementById('video').currentTime - {at}) < 0.5")
        paused = pinned.evaluate(STATE)
        assert paused["heights"] == [360, 480] and paused["active"] == 360 and not paused["abr"], paused
        assert paused["paused"] and paused["errors"] == [], paused
        assert paused["boards"] == 1, paused
        pinned.click("#ctl-quality")
        assert pinned.locator("#quality-menu [data-height='480']").is_visible()
