"""Honest views and QoE analytics (issue #16 item 4) on the real stack: a view counts once per
viewer per video per 30 minutes after 10 s played, never the owner's; a forged report buys no
view (credited time never exceeds the session's age by the server's clock) and malformed ones
are refused; a real Chromium playback reports startup time and playing time and the count under
the title goes up while the video plays; the owner's analytics (API, and the page linked from
the uploader dashboard with its retention curve) and the admin dashboard's startup-time
p50/p95 and rebuffer ratio. Timestamps are moved in the database instead of waiting (session
ages, the 30 minutes). Screenshots: var/test/screenshots/analytics-*."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import requests

from svcommon.timeutil import utcnow_naive
from tests.support.browser import chromium_page, watch_until
from tests.support.contract_client import ContractClient, ContractError
from tests.support.delivery import wait_for
from tests.support.media import ONE_RUNG
from tests.support.page_checks import check_page, login
from tests.support.playback import backdate_session, viewer
from tests.support.videos import make_ready_video, register_user, sql

pytestmark = pytest.mark.heavy
CLIP_SIZE = ONE_RUNG
CLIP_SECONDS = 12           # longer than the 10 s a view needs: the count must move while it plays


@pytest.fixture(scope="module")
def video(play, worker_app, mdb, stores, owner, clip):
    return make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Counted clip")


def views(mdb, vid: str) -> int:
    return sql(mdb, "SELECT views FROM videos WHERE id = %s", (vid,), one=True)["views"]


def session_row(mdb, sid: str) -> dict:
    return sql(mdb, "SELECT watch_ms, startup_ms, rebuffer_count, rebuffer_ms, bitrate_switches, watched_mask, "
                    "qoe_reported_at, viewed_at, counted_view, end_reason, ended_at FROM playback_sessions WHERE id = %s",
               (sid,), one=True)


def report(watch_s: float, **kw) -> dict:
    return {"startup_ms": 700, "watch_ms": int(watch_s * 1000), "rebuffer_count": 0, "rebuffer_ms": 0,
            "bitrate_switches": 0, "ranges": [[0, watch_s]], **kw}


def aged(client: ContractClient, mdb, vid: str, seconds: float = 60):
    """A session that has existed ``seconds`` by the server's clock (no waiting)."""
    s = client.open_session(vid)
    backdate_session(mdb, s.id, "started_at", seconds)
    return s


def test_a_view_counts_once_per_viewer_per_30_minutes_after_10_s(play, video, owner, mdb):
    gw, start = play["url"], views(mdb, video)
    user, a = viewer(gw, "watcher")
    s = aged(a, mdb, video)
    r = a.heartbeat(s, 9.0, report(9.9))                      # under 10 s played: not a view yet
    assert (r["view_counted"], r["views"]) == (False, start)
    r = a.heartbeat(s, 10.0, report(10.5))
    assert (r["view_counted"], r["views"]) == (True, start + 1) and views(mdb, video) == start + 1
    assert a.heartbeat(s, 11.0, report(11.5))["views"] == start + 1       # the same session: once
    a.end(s)
    # The same viewer again within 30 minutes (another session, even another device): no view.
    again = ContractClient(gw).login(user["username"], user["password"])
    s2 = aged(again, mdb, video)
    r = again.heartbeat(s2, 11.0, report(12))
    assert (r["view_counted"], r["views"]) == (False, start + 1)
    row = session_row(mdb, s2.id)
    assert row["viewed_at"] is not None and row["counted_view"] == 0 and row["watch_ms"] == 12000
    again.end(s2)
    # 31 minutes later (aged in the database) the same viewer counts again; here the final
    # report comes with the end of the session, as the player sends it when the page goes.
    sql(mdb, "UPDATE video_viewers SET last_view_at = last_view_at - INTERVAL 31 MINUTE "
             "WHERE video_id = %s AND user_id = %s", (video, user["id"]))
    s3 = aged(a, mdb, video)
    a.end(s3, report(12))
    assert views(mdb, video) == start + 2 and session_row(mdb, s3.id)["end_reason"] == "ended_by_client"
    # The owner's own plays never count, however long.
    mine = ContractClient(gw).login(owner["username"], owner["password"])
    so = aged(mine, mdb, video, 600)
    r = mine.heartbeat(so, 11.0, report(300))
    assert (r["view_counted"], r["views"]) == (False, start + 2)
    assert session_row(mdb, so.id)["viewed_at"] is None
    mine.end(so)


def test_forged_reports_buy_no_view_and_bad_ones_are_refused(play, video, mdb):
    gw, start = play["url"], views(mdb, video)
    _, c = viewer(gw, "forger")
    s = c.open_session(video)           # a few hundred ms old when it claims an hour of watching
    r = c.heartbeat(s, 0.0, report(3600, startup_ms=600000, rebuffer_count=10**6, rebuffer_ms=10**8,
                                   bitrate_switches=10**6, ranges=[[0, 12]]))
    assert (r["view_counted"], r["views"]) == (False, start)
    row = session_row(mdb, s.id)
    assert row["watch_ms"] < 10_000 and row["startup_ms"] < 10_000 and row["rebuffer_ms"] < 10_000
    assert row["rebuffer_count"] < 10 and row["bitrate_switches"] < 10
    assert bin(row["watched_mask"]).count("1") <= 5          # at most 2x the credited time + one slice of the 20
    c.end(s, report(3600))              # nor with the end
    assert views(mdb, video) == start and session_row(mdb, s.id)["viewed_at"] is None
    # Malformed reports: a clear 400 naming each problem, nothing stored.
    s2 = c.open_session(video)
    for bad, field in (({"watch_ms": -1}, "qoe.watch_ms"), ({"watch_ms": "10"}, "qoe.watch_ms"),
                       ({"watch_ms": True}, "qoe.watch_ms"), ({"ranges": [[5, 1]]}, "qoe.ranges"),
                       ({"ranges": [[0, 1]] * 201}, "qoe.ranges"), ({"bogus": 1}, "qoe"), ([], "qoe"),
                       ({"startup_ms": 600001}, "qoe.startup_ms")):
        with pytest.raises(ContractError) as err:
            c.heartbeat(s2, 1.0, bad)
        assert (err.value.status, err.value.code) == (400, "invalid_qoe") and field in err.value.body["fields"], bad
    with pytest.raises(ContractError) as err:
        c.end(s2, {"watch_ms": "a lot"})
    assert err.value.status == 400
    row = session_row(mdb, s2.id)
    assert row["qoe_reported_at"] is None and row["end_reason"] is None


def test_real_playback_reports_qoe_and_the_count_moves_while_watching(play, video, mdb):
    gw = play["url"]
    user = register_user(gw, "qoeviewer")
    before = views(mdb, video)
    label = lambda n: f"{n} {'view' if n == 1 else 'views'}"  # noqa: E731
    with chromium_page() as page:
        login(page, gw, user, f"/watch/{video}")
        assert page.inner_text("#views") == label(before)
        # Where the video was when the count changed (recorded by the page itself).
        page.evaluate("""(label) => new MutationObserver(() => { const v = document.getElementById('video');
            if (document.getElementById('views').textContent === label)
              window.svCountSeen = window.svCountSeen || { t: v.currentTime, ended: v.ended }; })
            .observe(document.getElementById('views'), { childList: true, characterData: true, subtree: true })""",
                      label(before + 1))
        page.click("#play")
        watch_until(page, f"document.getElementById('views').textContent === {label(before + 1)!r}", timeout_s=45)
        seen = page.evaluate("window.svCountSeen")
        assert not seen["ended"] and 9.5 < seen["t"] < CLIP_SECONDS, seen         # while it played, after 10 s
        sid = sql(mdb, "SELECT id FROM playback_sessions WHERE user_id = %s", (user["id"],), one=True)["id"]
        row = session_row(mdb, sid)
        assert row["counted_view"] == 1 and row["watch_ms"] >= 10_000 and 0 < row["startup_ms"] < 30_000, row
        assert row["watched_mask"] & 1, row                  # the first 5 % was watched
        watch_until(page, "document.getElementById('video').ended", timeout_s=20)
        page.goto("about:blank")        # pagehide: the DELETE carries the final report
    wait_for(lambda: session_row(mdb, sid)["end_reason"] == "ended_by_client", 10)
    final = session_row(mdb, sid)
    assert final["qoe_reported_at"] == final["ended_at"], final          # the report came with the DELETE
    assert final["watch_ms"] >= row["watch_ms"] and bin(final["watched_mask"]).count("1") >= 18, final
    assert views(mdb, video) == before + 1


@pytest.fixture
def analysed(play, owner, mdb):
    """A 100-second video with, by others, three sessions that played (40 s of the first half;
    all of it; the first 5 % only, with a 2 s stall), one that never played, and one of the
    owner's own (none of the last two count)."""
    vid = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status, duration, views) "
             "VALUES (%s, %s, 'Analysed clip', '', 'public', 'ready', 100, 2)", (vid, owner["id"]))
    others = [register_user(play["url"], "fan")["id"] for _ in range(2)]
    now = utcnow_naive()
    for user_id, watch_ms, mask, stall_ms in ((others[0], 40_000, 0x3FF, 0), (others[1], 100_000, 0xFFFFF, 0),
                                              (others[1], 5_000, 0x1, 2_000), (others[0], 0, 0, 0),
                                              (owner["id"], 90_000, 0xFFFFF, 0)):
        sql(mdb, "INSERT INTO playback_sessions (id, video_id, user_id, jkt, kek_enc, cek_enc, epoch_started_at, "
                 "codeword_length, tag_issued_at, started_at, expires_at, watch_ms, watched_mask, rebuffer_ms) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, 64, 0, %s, %s, %s, %s, %s)",
            (uuid.uuid4().hex, vid, user_id, "j" * 43, b"k" * 60, b"c" * 60, now, now, now, watch_ms, mask, stall_ms))
    yield vid
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))            # its sessions go with it


def test_owner_analytics_api_and_page(play, owner, analysed, admin_headers):
    gw = play["url"]
    url = f"{gw}/api/videos/{analysed}/analytics"
    a = requests.get(url, headers={"Authorization": f"Bearer {owner['access_token']}"}, timeout=10).json()
    assert (a["views"], a["plays"], a["watch_seconds"], a["average_watch_seconds"]) == (2, 3, 145.0, 48.3)
    assert a["rebuffer_ratio"] == round(2 / 147, 4)
    shares = [p["share"] for p in a["retention"]["points"]]
    assert a["retention"]["slice_percent"] == 5 and len(shares) == 20
    assert shares[0] == 1.0 and shares[5] == round(2 / 3, 4) and shares[10] == round(1 / 3, 4) == shares[19]
    assert requests.get(url, headers=admin_headers, timeout=10).status_code == 200
    stranger = register_user(gw, "nosy")
    r = requests.get(url, headers={"Authorization": f"Bearer {stranger['access_token']}"}, timeout=10)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    with chromium_page() as page:
        login(page, gw, owner, "/upload/")
        link = page.locator(f"li[data-id='{analysed}'] a.analytics")
        link.click()
        page.wait_for_url(f"{gw}/upload/videos/{analysed}/analytics")
        assert page.inner_text("#stat-views") == "2" and page.inner_text("#stat-plays") == "3"
        assert page.inner_text("#stat-watch") == "2 min 25 s"
        assert "Of 3 plays, 100 % watched the first 5 %" in page.inner_text("#retention-summary")
        assert len(page.get_attribute("#retention-chart polyline", "points").split()) == 20
        page.click("#retention-h ~ details summary")
        cells = page.locator("#retention-table tbody tr").nth(10).locator("td").all_inner_texts()
        assert cells == ["50–55 %", "0:50–0:55", "33 %", "1"]
        check_page(page, "analytics", controls=("main a[href='/upload/']", "#retention-h ~ details summary",
                                                  "#retention-h ~ details .table-wrap"))


def percentile(values: list[int], p: float) -> float:
    """PERCENTILE_CONT: linear between the two nearest ranks."""
    v = sorted(values)
    rank = p * (len(v) - 1)
    low = int(rank)
    return v[low] + (v[min(low + 1, len(v) - 1)] - v[low]) * (rank - low)


def test_admin_dashboard_shows_startup_percentiles_and_rebuffer_ratio(play, analysed, mdb, admin_headers):
    gw, now = play["url"], utcnow_naive()
    user_id = sql(mdb, "SELECT user_id FROM playback_sessions WHERE video_id = %s LIMIT 1", (analysed,), one=True)
    for startup, ago, watch_ms, stall_ms in ((400, 1, 30_000, 1_000), (900, 2, 20_000, 0), (3_000, 3, 10_000, 500),
                                             (7_000, 24 * 3, 50_000, 5_000)):
        when = now - timedelta(hours=ago)
        sql(mdb, "INSERT INTO playback_sessions (id, video_id, user_id, jkt, kek_enc, cek_enc, epoch_started_at, "
                 "codeword_length, tag_issued_at, started_at, expires_at, startup_ms, watch_ms, rebuffer_ms) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, 64, 0, %s, %s, %s, %s, %s)",
            (uuid.uuid4().hex, analysed, user_id["user_id"], "j" * 43, b"k" * 60, b"c" * 60, when, when, when,
             startup, watch_ms, stall_ms))
    quality = requests.get(f"{gw}/api/admin/dashboard", headers=admin_headers, timeout=10).json()["quality"]
    for window, hours in (("last_24h", 24), ("last_7d", 24 * 7)):
        since = now - timedelta(hours=hours)
        startups = [r["startup_ms"] for r in sql(mdb, "SELECT startup_ms FROM playback_sessions WHERE started_at >= %s "
                                                      "AND startup_ms IS NOT NULL", (since,))]
        sums = sql(mdb, "SELECT SUM(watch_ms) AS w, SUM(rebuffer_ms) AS r FROM playback_sessions "
                        "WHERE started_at >= %s AND watch_ms > 0", (since,), one=True)
        q = quality[window]
        # Rounded to the millisecond from MariaDB's own arithmetic: an interpolation that lands
        # on a half (2949.5) may round either way against this float one (2949.4999...).
        assert abs(q["startup_ms_p50"] - percentile(startups, 0.5)) <= 0.5 + 1e-6, (window, startups)
        assert abs(q["startup_ms_p95"] - percentile(startups, 0.95)) <= 0.5 + 1e-6, (window, startups)
        assert q["rebuffer_ratio"] == round(int(sums["r"]) / (int(sums["w"]) + int(sums["r"])), 4)
    assert quality["last_7d"]["startup_sessions"] > quality["last_24h"]["startup_sessions"]
    # The page shows the same figures (its layout and axe: test_admin_dashboard.py's check_page).
    html = requests.get(f"{gw}/admin/", headers={**admin_headers, "Accept": "text/html"}, timeout=10).text
    row = re.search(r'<tr data-window="last_24h">(.*?)</tr>', html, re.S).group(1)
    assert f'<td class="q-p50">{quality["last_24h"]["startup_ms_p50"] / 1000:.2f} s</td>' in row
    assert f'<td class="q-ratio">{quality["last_24h"]["rebuffer_ratio"] * 100:.2f} %</td>' in row
