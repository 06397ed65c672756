"""The admin console's dashboard (/admin/) and navigation on the real stack: the figures
(users, videos by status, storage, playback sessions per day, the queue, live sessions) move
by exactly what a test adds to the database; a dead job's reason is shown and its Retry
button (keyboard) puts it back through the job admin API; every admin page carries the one
admin navigation and the links back to the apps, checked in real Chromium at desktop and
phone sizes with axe."""
from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from svcommon import jobqueue
from svcommon.filestore import media_prefix, original_prefix
from svcommon.storyboards import Storyboard
from svcommon.timeutil import utcnow_naive
from tests.support.browser import chromium_page
from tests.support.media import make_clip
from tests.support.page_checks import asset_log, check_page, login
from tests.support.videos import make_ready_video, register_user, sql

HEADER = ("header .brand", "#logout-form button")
APP_LINKS = ("header nav a[href='/']", "header nav a[href='/upload/']", "header a[href='/auth/account']")
ADMIN_NAV = tuple(f"#admin-nav a[href='{href}']" for href in ("/admin/", "/admin/users", "/admin/security",
                                                                 "/admin/forensics"))
MIGRATION = Path(__file__).resolve().parents[1] / "database" / "migrations" / "017_admin_console.sql"


def _dashboard(gw, headers):
    r = requests.get(f"{gw}/api/admin/dashboard", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _session(db, vid, user_id, started, expires, ended=None):
    sql(db, "INSERT INTO playback_sessions (id, video_id, user_id, jkt, kek_enc, cek_enc, epoch_started_at, "
            "codeword_length, tag_issued_at, started_at, expires_at, ended_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 64, 0, %s, %s, %s)",
        (uuid.uuid4().hex, vid, user_id, "j" * 43, b"k" * 60, b"c" * 60, started, started, expires, ended))


def _dead_job(db, vid, reason):
    job = jobqueue.enqueue(db, jobqueue.VIDEO_PROCESS, {"video_id": vid}, subject=vid)
    sql(db, "UPDATE jobs SET status = 'dead', attempts = max_attempts, last_error = %s, "
            "finished_at = UTC_TIMESTAMP(6) WHERE id = %s", (reason, job))
    return job


@pytest.fixture
def seeded(live_stack, db):
    """A failed video of a new user, five playback sessions (three today, one of them live;
    two two days ago) plus one outside the 30 days, and two dead jobs about the video."""
    owner = register_user(live_stack["url"], "dash")
    vid = uuid.uuid4().hex
    sql(db, "INSERT INTO videos (id, owner_id, title, description, visibility, status, status_message, size_bytes) "
            "VALUES (%s, %s, 'Dashboard clip', '', 'private', 'failed', 'not a video', 12345)", (vid, owner["id"]))
    now = utcnow_naive()
    _session(db, vid, owner["id"], now - timedelta(minutes=1), now + timedelta(minutes=5))                # live
    for _ in range(2):
        _session(db, vid, owner["id"], now - timedelta(minutes=2), now - timedelta(minutes=1))            # expired
    for _ in range(2):
        _session(db, vid, owner["id"], now - timedelta(days=2), now - timedelta(days=2) + timedelta(minutes=5),
                 now - timedelta(days=2) + timedelta(minutes=3))
    _session(db, vid, owner["id"], now - timedelta(days=40), now - timedelta(days=40) + timedelta(minutes=5))
    # Its captions and storyboard count as published media (sizes only: nothing is read).
    sql(db, "INSERT INTO video_captions (id, video_id, lang, label, object_key, source_format, cue_count, size_bytes) "
            "VALUES (%s, %s, 'en', 'English', %s, 'vtt', 3, 2000)", (uuid.uuid4().hex, vid, f"media/{vid}/captions/x.vtt"))
    sql(db, "INSERT INTO video_storyboards (video_id, metadata) VALUES (%s, %s)",
        (vid, Storyboard(2, 30, 160, 90, 5, 5, (1000, 500), "v1").to_json()))
    jobs = [_dead_job(db, vid, "probe failed: the dashboard test's reason <b>not markup</b>"),
            _dead_job(db, vid, "a second dead job")]
    try:
        yield {"owner": owner, "video": vid, "jobs": jobs, "today": now.date().isoformat(),
               "two_days_ago": (now.date() - timedelta(days=2)).isoformat()}
    finally:
        sql(db, "DELETE FROM jobs WHERE subject = %s", (vid,))
        sql(db, "DELETE FROM videos WHERE id = %s", (vid,))            # its sessions go with it


def test_dashboard_figures_move_by_what_was_added(live_stack, admin_headers, db, request):
    gw = live_stack["url"]
    # Earlier tests' sessions would expire between the two readings (the live count would move
    # by itself): they are over (tests run one after another), so end them now.
    sql(db, "UPDATE playback_sessions SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND "
            "WHERE expires_at > UTC_TIMESTAMP(6) AND ended_at IS NULL")
    before = _dashboard(gw, admin_headers)
    data = request.getfixturevalue("seeded")
    after = _dashboard(gw, admin_headers)
    days_before = {d["day"]: d["sessions"] for d in before["views"]["days"]}
    days_after = {d["day"]: d["sessions"] for d in after["views"]["days"]}
    assert len(after["views"]["days"]) == 30 and after["views"]["days"][-1]["day"] == data["today"]
    assert days_after[data["today"]] - days_before.get(data["today"], 0) == 3
    assert days_after[data["two_days_ago"]] - days_before[data["two_days_ago"]] == 2
    assert after["views"]["sessions"] - before["views"]["sessions"] == 5        # the 40-day-old one is not
    assert after["sessions"]["active"] - before["sessions"]["active"] == 1
    assert after["users"]["total"] - before["users"]["total"] == 1
    assert after["users"]["viewer"] - before["users"]["viewer"] == 1
    assert after["videos"]["by_status"]["failed"] - before["videos"]["by_status"]["failed"] == 1
    assert after["storage"]["originals_bytes"] - before["storage"]["originals_bytes"] == 12345
    assert after["storage"]["media_bytes"] - before["storage"]["media_bytes"] == 2000 + 1000 + 500
    kinds = lambda d: {k["kind"]: k for k in d["queue"]["kinds"]}  # noqa: E731
    assert (kinds(after)["video.process"]["dead"] - kinds(before).get("video.process", {"dead": 0})["dead"]) == 2
    dead = {j["id"]: j for j in after["queue"]["dead"]}
    assert dead[data["jobs"][0]]["subject_title"] == "Dashboard clip"
    assert dead[data["jobs"][0]]["last_error"].startswith("probe failed: the dashboard test's reason")
    # Admins only.
    owner = {"Authorization": f"Bearer {data['owner']['access_token']}"}
    assert requests.get(f"{gw}/api/admin/dashboard", headers=owner, timeout=10).status_code == 403
    assert requests.get(f"{gw}/api/admin/dashboard", timeout=10).status_code == 401
    page = requests.get(f"{gw}/admin/", headers={**owner, "Accept": "text/html"}, timeout=10)
    assert page.status_code == 403 and "Not allowed" in page.text
    anonymous = requests.get(f"{gw}/admin/", allow_redirects=False, timeout=10)
    assert anonymous.status_code in (302, 303) and "/auth/login?redirect=" in anonymous.headers["Location"]
    bare = requests.get(f"{gw}/admin", allow_redirects=False, timeout=10)
    assert bare.status_code in (301, 308) and bare.headers["Location"].endswith("/admin/")


def test_media_bytes_backfill_matches_what_publishing_records(live_stack, db, owner_id):
    """Migration 017 fills video_media.media_bytes of rows published before it from their
    metadata, in SQL; new publications record media_store.stored_bytes(meta): the same sum."""
    from watermark_svc.media_store import stored_bytes
    meta = {"segment_count": 3, "duration": 6.0,
            "renditions": [{"name": "360p", "init_size": 812, "segments": {"a": [1000, 2000, 3000],
                                                                            "b": [1001, 2002, 3003]}},
                           {"name": "720p", "init_size": 901, "segments": {"a": [5000, 6000, 7000],
                                                                            "b": [5005, 6006, 7007]}}],
            "audio": {"init_size": 640, "segment_sizes": [300, 301, 302]}}
    expected = 812 + 901 + 640 + sum([1000, 2000, 3000, 1001, 2002, 3003, 5000, 6000, 7000, 5005, 6006, 7007,
                                      300, 301, 302]) + 15 * 28
    assert stored_bytes(meta) == expected
    vid = uuid.uuid4().hex
    sql(db, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
            "VALUES (%s, %s, 'Backfilled', '', 'private', 'ready')", (vid, owner_id))
    sql(db, "INSERT INTO video_media (video_id, segment_count, duration, metadata) VALUES (%s, 3, 6.0, %s)",
        (vid, json.dumps(meta)))
    try:
        update = next(s for s in MIGRATION.read_text().split(";\n") if "UPDATE video_media" in s)
        update = "\n".join(line for line in update.splitlines() if not line.lstrip().startswith("--"))
        sql(db, update)
        assert sql(db, "SELECT media_bytes FROM video_media WHERE video_id = %s", (vid,), one=True)["media_bytes"] \
            == expected
    finally:
        sql(db, "DELETE FROM videos WHERE id = %s", (vid,))


@pytest.mark.heavy
def test_published_media_bytes_are_what_the_store_holds(worker_app, stores, db, owner_id, own_jobs, tmp_path):
    """A video processed by the real worker records, at publication, exactly the bytes its
    sealed segments and init segments take in the store."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=4, size="320x240").read_bytes()
    vid = make_ready_video(worker_app, db, stores, owner_id, clip, title="Measured")
    try:
        recorded = sql(db, "SELECT media_bytes FROM video_media WHERE video_id = %s", (vid,), one=True)["media_bytes"]
        media = [o for o in stores["watermark"].list(media_prefix(vid))
                 if "/enc/" in o["key"] or o["key"].endswith("/init.mp4")]
        assert any("/enc/" in o["key"] for o in media) and recorded == sum(o["size"] for o in media) > 0
    finally:
        stores["watermark"].delete_prefix(media_prefix(vid))
        stores["upload"].delete_prefix(original_prefix(vid))
        sql(db, "DELETE FROM jobs WHERE subject = %s", (vid,))
        sql(db, "DELETE FROM videos WHERE id = %s", (vid,))


@pytest.mark.browser
def test_dashboard_page_and_retry(live_stack, admin_account, seeded, db):
    gw = live_stack["url"]
    first, second = seeded["jobs"]
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, admin_account, "/admin/")
        assert page.inner_text("h1") == "Dashboard"
        assert page.get_attribute("#admin-nav a[href='/admin/']", "aria-current") == "page"
        assert page.locator("#views-chart rect").count() == 30
        assert int(page.get_attribute(f"#views-chart rect[data-day='{seeded['today']}']", "data-sessions")) >= 3
        item = page.locator(f"[data-job='{first}']")
        assert "the dashboard test's reason <b>not markup</b>" in item.inner_text()       # text, not HTML
        assert "Dashboard clip" in item.inner_text()
        assert page.locator("#card-sessions a[href='/admin/security']").is_visible()
        check_page(page, "admin-dashboard", (*HEADER, *APP_LINKS, *ADMIN_NAV, f"[data-job='{first}'] button",
                                             "#card-users a", "#card-sessions a", "details summary"))
        # Retry from the keyboard: the job is queued again through the job admin API.
        page.focus(f"[data-job='{first}'] button")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"[data-job='{first}'][data-state='queued']")
        assert "Back in the queue" in page.inner_text(f"[data-job='{first}'] .retry-result")
        assert page.locator(f"[data-job='{first}'] button").count() == 0
        assert page.evaluate("() => document.activeElement.classList.contains('retry-result')")
        row = sql(db, "SELECT status, attempts FROM jobs WHERE id = %s", (first,), one=True)
        assert row == {"status": "queued", "attempts": 0}
        # A job that is no longer dead (another admin was quicker): the refusal is shown.
        sql(db, "UPDATE jobs SET status = 'queued' WHERE id = %s", (second,))
        page.click(f"[data-job='{second}'] button")
        page.wait_for_function(f"() => document.querySelector(\"[data-job='{second}'] .retry-result\")"
                               ".textContent.startsWith('Retry failed')")
        assert "only a dead job can be retried" in page.inner_text(f"[data-job='{second}'] .retry-result")
        assert page.locator(f"[data-job='{second}'] button").is_enabled()
        check_page(page, "admin-dashboard-retried", (*HEADER, f"[data-job='{second}'] button"))
        assert not failed, failed


@pytest.mark.browser
def test_admin_navigation_on_every_admin_page(live_stack, admin_account):
    gw = live_stack["url"]
    with chromium_page() as page, asset_log(page) as failed:
        # From the apps (the upload page: the admin's own, empty list; the library shows other
        # tests' videos, whose thumbnails some tests remove on purpose) to the console.
        login(page, gw, admin_account, "/upload/")
        page.click("header nav a[href='/admin/']")
        page.wait_for_url(f"{gw}/admin/")
        for href, name, heading in (("/admin/users", "users", "Users"), ("/admin/security", "security", "Security"),
                                    ("/admin/forensics", "forensics", None), ("/admin/", "dashboard", "Dashboard")):
            page.set_viewport_size({"width": 390, "height": 844})        # the phone's wrapped navigation works
            page.click(f"#admin-nav a[href='{href}']")
            page.wait_for_url(f"{gw}{href}")
            assert page.get_attribute(f"#admin-nav a[href='{href}']", "aria-current") == "page"
            assert page.get_attribute("header nav a[href='/admin/']", "aria-current") in ("page", "true")
            if heading:
                assert re.search(heading, page.inner_text("h1"))
            check_page(page, f"admin-nav-{name}", (*HEADER, *APP_LINKS, *ADMIN_NAV))
        # Non-admin pages have no admin navigation; the way back to the apps works.
        page.click("header nav a[href='/upload/']")
        page.wait_for_url(f"{gw}/upload/")
        assert page.locator("#admin-nav").count() == 0
        assert not failed, failed


@pytest.mark.browser
def test_users_page_paging_and_enable(live_stack, admin_account, db):
    """The users page pages through a search (25 a page, the search kept), and Enable on the
    second page gives the account back at once and returns to that page."""
    gw, tag = live_stack["url"], f"pg{uuid.uuid4().hex[:8]}"
    names = [f"{tag}_{i:02d}" for i in range(27)]
    for i, name in enumerate(names):
        sql(db, "INSERT INTO users (id, username, email, password_hash, role, disabled, created_at) "
                "VALUES (%s, %s, %s, 'x', 'viewer', %s, UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND)",
            (uuid.uuid4().hex, name, f"{name}@e.test", 1 if i == 26 else 0, i))
    try:
        with chromium_page() as page, asset_log(page) as failed:
            login(page, gw, admin_account, f"/admin/users?q={tag}")
            assert page.inner_text("#count").startswith("27 users matching")
            assert page.locator("[data-user]").count() == 25
            page.click("nav.pager a[rel=next]")
            page.wait_for_url(re.compile(r".*/admin/users\?q=" + tag + r"&page=2$"))
            assert page.locator("[data-user]").count() == 2 and "Page 2 of 2" in page.inner_text("nav.pager")
            row = f"[data-user='{names[26]}']"
            assert page.locator(f"{row} .badge.bad").is_visible()
            check_page(page, "admin-users-page-2", (*HEADER, *ADMIN_NAV, "nav.pager a[rel=prev]",
                                                    f"{row} button[value=enable]"))
            page.focus(f"{row} button[value=enable]")
            page.keyboard.press("Enter")
            page.wait_for_selector("#flash")
            assert page.url.endswith(f"/admin/users?q={tag}&page=2")
            assert page.locator(f"{row} .badge.bad").count() == 0
            assert sql(db, "SELECT disabled FROM users WHERE username = %s", (names[26],), one=True)["disabled"] == 0
            assert not failed, failed
    finally:
        sql(db, f"DELETE FROM users WHERE username LIKE '{tag}\\_%'")
