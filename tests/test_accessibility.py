"""Every page of every app (issue #15 item 6) in real Chromium through the gateway, at 1280x800,
390x844 and 360x740: no serious or critical axe-core violation, no horizontal overflow, the
page's controls visible and enabled (tests/support/page_checks.check_page, which also writes
the screenshots under var/test/screenshots/), and its main actions reachable with Tab with a
visible focus (``tab_to``). Pages other helpers rework (watch page, upload app) are checked
here too, by structure rather than by their exact controls, so these checks rerun after a merge."""
from __future__ import annotations

import json
import re
import uuid

import pytest
import requests

from tests.support.browser import chromium_page
from tests.support.contract_client import ContractClient
from tests.support.page_checks import asset_log, assert_placeholder_fits, check_page, login, tab_to
from tests.support.playback import refused_until
from tests.support.videos import make_ready_video, register_user, sql
from watermark_svc.forensics.verdict import ambiguity

pytestmark = pytest.mark.browser
CLIP_SECONDS = 4          # the shared ``clip`` fixture (tests/conftest.py)
HEADER = ("header .brand", "#logout-form button")


@pytest.fixture(scope="module")
def site(live_stack, worker_app, mdb, stores, clip):
    """An uploader with one processed public video (and a playback session of it) and one still
    processing, a finished detection's record (its report page), and the admin's credentials."""
    gw = live_stack["url"]
    owner = register_user(gw, "a11y")
    ready = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Accessible sunrise")
    waiting = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Still encoding', '', 'public', 'processing')", (waiting, owner["id"]))
    ContractClient(gw).login(owner["username"], owner["password"]).open_session(ready)   # for the console
    detection = uuid.uuid4().hex
    result = {"conclusion": "No session of this video matches the copy.", "video_id": ready,
              "video_title": "Accessible sunrise", "method": "auto", "method_used": "watermark", "match": None,
              "metadata_layer": {"tags_found": 0, "valid": [], "invalid": 0},
              "false_accusation_probability": None, "threshold": 1e-6, "sessions_tested": 2,
              "suspect": {"width": 640, "height": 360, "fps": 30.0, "duration": 4.0, "video_codec": "h264"},
              "robust": {"segments_read": 2, "min_abs_z": 0.4, "median_abs_z": 0.7, "offset_seconds": 0.0,
                         "window_seconds": [0, 4], "correlation": 0.97, "significance": 9.1,
                         "placement": {"crop_width": 1.0, "crop_height": 1.0},
                         "segments": [{"index": 0, "z": 0.4}, {"index": 1, "z": -1.0}]},
              # The longest warning the report shows: two other videos read, more not read (32-hex
              # ids in running text must wrap on a phone), in verdict.ambiguity's own words.
              "ambiguity": ambiguity(read := {"video_id": ready}, [read, *(
                  {"video_id": f"{n:032x}", "accused": False, "watermark_present": n == 1} for n in (1, 2))],
                  [f"{n:032x}" for n in range(3, 9)]) | {"runner_up_title": "Accessible sunrise (re-upload)"}}
    sql(mdb, "INSERT INTO detections (id, requested_video_id, video_id, status, progress, step, suspect_key, "
             "suspect_name, suspect_size, suspect_sha256, method, result, finished_at) VALUES (%s, %s, %s, 'done', "
             "100, 'done', %s, 'leak.mp4', 12345, %s, 'none', %s, UTC_TIMESTAMP(6))",
        (detection, ready, ready, f"forensics/detections/{detection}/suspect", "ab" * 32, json.dumps(result)))
    yield {"gw": gw, "owner": owner, "ready": ready, "waiting": waiting, "detection": detection,
           "admin": {"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]}}
    sql(mdb, "DELETE FROM detections WHERE id = %s", (detection,))
    # Through the API, objects and all: the suite shares one library.
    token = requests.post(f"{gw}/api/auth/login", json={"username": owner["username"], "password": owner["password"]},
                          timeout=10).json()["access_token"]
    for vid in (ready, waiting):
        r = requests.delete(f"{gw}/api/videos/{vid}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 204, r.text


def test_anonymous_pages(site):
    gw = site["gw"]
    admin = requests.post(f"{gw}/api/auth/login", json=site["admin"], timeout=10).json()["access_token"]
    reset = requests.post(f"{gw}/api/admin/users/{site['owner']['id']}/reset-link", timeout=10,
                          headers={"Authorization": f"Bearer {admin}"}).json()["url"]
    with chromium_page() as page, asset_log(page) as failed:
        page.goto(f"{gw}/auth/login")
        check_page(page, "a11y-login", ("input[name=username]", "input[name=password]", "#login-form button"))
        tab_to(page, "input[name=username]")
        tab_to(page, "#login-form button")
        page.goto(f"{gw}/auth/signup")
        check_page(page, "a11y-signup", ("input[name=username]", "input[name=email]", "#signup-form button"))
        tab_to(page, "#signup-form button")
        page.goto(reset)
        check_page(page, "a11y-reset", ("input[name=password]", "#reset-form button"))
        tab_to(page, "#reset-form button")
        page.goto(f"{gw}/no/such/page")
        check_page(page, "a11y-404", ("main .button",))
        tab_to(page, "main .button")
        assert not failed, failed


def test_viewer_pages(site):
    gw, owner = site["gw"], site["owner"]
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, owner)
        page.wait_for_selector("#grid .card a")
        card = f"#grid .card[data-video-id='{site['ready']}']"       # views and when, in words
        assert re.fullmatch(r"0 views · (just now|\d+ min ago)", page.inner_text(f"{card} .meta")), page.inner_text(card)
        assert page.get_attribute(f"{card} time", "title").endswith(" UTC")
        assert_placeholder_fits(page, "#q")
        check_page(page, "a11y-library", (*HEADER, "#q", "#search button", "#grid .card a"))
        tab_to(page, "#q")
        tab_to(page, f"#grid .card a[href='/watch/{site['ready']}']")    # this module's video, whatever else is listed
        page.keyboard.press("Enter")                                   # a card opens the watch page
        page.wait_for_url(f"{gw}/watch/{site['ready']}")
        page.wait_for_selector("#watch")
        assert re.fullmatch(r"0:00 / 0:0[34]", page.inner_text("#time"))   # the length shows before playing
        check_page(page, "a11y-watch", (*HEADER, "video", "#watch button:visible"))
        tab_to(page, "#watch button:visible")
        page.goto(f"{gw}/watch/{site['waiting']}")
        assert "processing" in page.inner_text("h1").lower()
        check_page(page, "a11y-still-processing", (*HEADER, "main a[href='/']"))
        tab_to(page, "main a[href='/']")
        page.goto(f"{gw}/upload/")
        page.wait_for_selector("#videos li")
        check_page(page, "a11y-upload", (*HEADER, "#drop", "#new-title", "#new-visibility", "#videos li button"))
        tab_to(page, "#drop")
        tab_to(page, "#videos li button")
        # The account page lists this account's live playback (another device's) with End.
        elsewhere = ContractClient(gw).login(owner["username"], owner["password"])
        playing = elsewhere.open_session(site["ready"])
        page.goto(f"{gw}/auth/account")
        item = f"[data-session='{playing.id}']"
        assert "Accessible sunrise" in page.inner_text(item)
        check_page(page, "a11y-account", (*HEADER, "#password-form button", f"{item} button", "#sign-out-everywhere"))
        tab_to(page, "#password-form button")
        tab_to(page, f"{item} button")
        page.keyboard.press("Enter")
        page.wait_for_selector("#flash")
        assert page.inner_text("#flash") == "The playback session has been ended."
        assert page.locator(item).count() == 0
        refusal = refused_until(lambda: elsewhere.request_keys(playing, "video", 0, 1))
        assert (refusal.status, refusal.code) == (410, "session_ended")
        page.goto(f"{gw}/admin/security")
        assert "Not allowed" in page.inner_text("h1")
        check_page(page, "a11y-403", HEADER)
        tab_to(page, "#logout-form button")
        assert not failed, failed


def test_admin_pages(site):
    gw = site["gw"]
    # A security event of its own for the console's event list (run alone, nothing else made one).
    assert requests.get(f"{gw}/api/forensics/detections", headers={"Authorization": "Bearer forged"},
                        timeout=10).status_code == 401
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, site["admin"], "/admin/users")
        check_page(page, "a11y-admin-users", (*HEADER, "#q", "form.search button", ".users select"))
        tab_to(page, "#q")
        tab_to(page, ".users button")
        page.goto(f"{gw}/admin/forensics")
        page.wait_for_selector("#detections tbody td")
        # The shared form styles, and times as relative words (the exact one in a title), not ISO.
        assert page.eval_on_selector("#submit", "b => getComputedStyle(b).backgroundColor") == "rgb(37, 87, 214)"
        whens = page.eval_on_selector_all("#detections tbody tr", """rows => rows.map(r => {
            const t = r.cells[0].querySelector('time'); return t && [t.textContent, t.title]; })""")
        assert whens and all(w and re.fullmatch(r"just now|\d+ (min|h|days?) ago", w[0]) and w[1].endswith(" UTC")
                             for w in whens), whens
        check_page(page, "a11y-forensics", (*HEADER, "#file", "#video_id", "#submit"))
        tab_to(page, "#file")
        tab_to(page, "#submit")
        page.goto(f"{gw}/admin/forensics/detections/{site['detection']}/report")
        assert "trace the copy again naming that video" in page.inner_text("#ambiguity")
        check_page(page, "a11y-report", (*HEADER, "#print"))
        tab_to(page, "#print")
        page.goto(f"{gw}/admin/security")
        page.wait_for_selector("#sessions tbody [data-open]")
        check_page(page, "a11y-security", (*HEADER, "#session-filters input[name=user]", "#event-filters select",
                                           "#sessions tbody [data-open]", "#events tbody [data-open]"))
        tab_to(page, "#session-filters input[name=user]")
        tab_to(page, "#sessions tbody [data-open]")
        tab_to(page, "#event-filters select")
        assert not failed, failed
