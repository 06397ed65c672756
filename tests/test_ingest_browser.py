"""A person uploads through the /upload/ page in real Chromium: login redirect, progress,
an interrupted transfer (connection dropped, then a page reload), resume from the server's
offset, and the video reaching 'queued' — with hostile titles shown as text."""
from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests import ingest_helpers as h
from tests.support.browser import chromium_page, screenshots

pytestmark = pytest.mark.browser
MiB = 1024 * 1024


def _login(page, gw, user):
    page.goto(f"{gw}/upload/")
    page.wait_for_url(re.compile(r".*/auth/login\?redirect=%2Fupload%2F$|.*/auth/login\?redirect=/upload/$"))
    page.fill("input[name=username]", user["username"])
    page.fill("input[name=password]", user["password"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{gw}/upload/")


def test_upload_interrupt_reload_resume(live_stack, tmp_path):
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "br")
    src = h.make_video(tmp_path / "src.mp4", seconds=2)
    title = f"<img src=x onerror=window.__xss=1> {uuid.uuid4().hex[:6]}"
    with chromium_page() as page:
        _login(page, gw, user)
        # Larger than the page's tus chunk (TUS_CHUNK_SIZE), so the upload takes two PATCHes.
        size = int(page.get_attribute("#app", "data-chunk-size")) + 24 * MiB
        video = h.pad_video(src, tmp_path / "holiday.mp4", size)

        def gate(route):
            # Later PATCHes fail like a dropped connection until released.
            if route.request.method == "PATCH":
                return route.abort("connectionreset")
            return route.continue_()

        page.fill("#new-title", title)
        page.set_input_files("#file-input", str(video))
        page.wait_for_function("() => { const t = document.querySelector('.transfer');"
                               " return t && parseFloat(t.dataset.percent || '0') > 0; }", timeout=30000)
        # The first PATCH is under way: it goes through (routed only from here on, as an
        # intercepted request hands its whole body to the driver, too much for a chunk).
        page.route("**/api/uploads/*", gate)
        page.wait_for_function("() => parseFloat(document.querySelector('.transfer').dataset.percent) >= 40",
                               timeout=30000)
        pct = float(page.get_attribute(".transfer", "data-percent"))
        assert 0 < pct < 100
        assert re.fullmatch(r"[\d.]+ [KMG]?i?B/s", page.inner_text(".transfer .speed").strip()), \
            page.inner_text(".transfer .speed")
        assert "%" in page.inner_text(".transfer .percent")
        page.wait_for_timeout(1500)  # a retry or two hit the dropped connection
        stored = h.db_rows(env, "SELECT upload_offset, upload_length FROM uploads WHERE owner_id = %s", (user["id"],))
        assert len(stored) == 1 and 0 < stored[0]["upload_offset"] < stored[0]["upload_length"]
        # The list shows the unfinished upload from the server's side.
        page.reload()
        page.wait_for_selector("li.video[data-status=uploading]")
        page.unroute("**/api/uploads/*")
        # Picking the same file again resumes from the stored offset instead of restarting.
        page.set_input_files("#file-input", str(video))
        page.wait_for_function("() => document.querySelector('.transfer').dataset.state === 'done'", timeout=60000)
        page.wait_for_selector("li.video[data-status=queued]", timeout=30000)
        assert page.inner_text("li.video .title") == title                  # shown as text
        assert page.evaluate("window.__xss") is None                          # never executed
        assert page.locator("li.video .title img").count() == 0
    rows = h.db_rows(env, "SELECT id, status, size_bytes FROM videos WHERE owner_id = %s", (user["id"],))
    assert len(rows) == 1 and rows[0]["status"] == "queued" and rows[0]["size_bytes"] == size
    # only one upload was ever created: the second pick resumed it
    assert len(h.db_rows(env, "SELECT id FROM uploads WHERE owner_id = %s", (user["id"],))) == 1
    assert h.s3_keys(env, f"originals/{rows[0]['id']}/") == [f"originals/{rows[0]['id']}/original"]


def _big_chunk_under_way(page, tmp_path) -> tuple[object, int]:
    """Pick a video of 4 KiB + a tus chunk + 24 MiB (three PATCHes) on an upload throttled to
    64 MiB/s, and return once its big chunk is under way (a few seconds of it left): the
    DevTools session that throttles, and the file's size."""
    size = int(page.get_attribute("#app", "data-chunk-size")) + 24 * MiB
    video = h.pad_video(h.make_video(tmp_path / "src.mp4", seconds=2), tmp_path / "long.mp4", size)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 64 * MiB})
    page.set_input_files("#file-input", str(video))
    page.wait_for_function("() => { const t = document.querySelector('.transfer');"
                           " return t && parseFloat(t.dataset.percent || '0') > 1; }", timeout=60000)
    return cdp, size


def test_an_upload_outlives_its_access_cookie(live_stack, tmp_path):
    """An upload longer than the 5-minute access cookie: the PATCH sent after it expired is
    answered 401, the page refreshes its cookies and sends that chunk again, and the upload
    ends as one video with every byte (here the cookie is dropped while the big chunk is
    under way, at an upload throttled to 64 MiB/s so that chunk takes a few seconds)."""
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "br")
    with chromium_page() as page:
        _login(page, gw, user)
        seen: list[tuple[str, str, int]] = []
        page.on("response", lambda r: seen.append((r.request.method, urlsplit(r.url).path, r.status)))
        _, size = _big_chunk_under_way(page, tmp_path)
        page.context.clear_cookies(name="sv_access")          # as if it expired during that chunk
        page.wait_for_function("() => document.querySelector('.transfer').dataset.state === 'done'", timeout=120000)
        assert page.locator(".transfer .error").is_hidden()
    patches = [status for method, path, status in seen if method == "PATCH"]
    assert patches.count(401) == 1 and patches[-1] == 204, seen
    assert ("POST", "/api/auth/refresh", 200) in seen, seen
    rows = h.db_rows(env, "SELECT id, status, size_bytes FROM videos WHERE owner_id = %s", (user["id"],))
    assert len(rows) == 1 and rows[0]["status"] == "queued" and rows[0]["size_bytes"] == size
    assert len(h.db_rows(env, "SELECT id FROM uploads WHERE owner_id = %s", (user["id"],))) == 1


def test_an_upload_waits_offline_and_goes_on_by_itself(live_stack, tmp_path):
    """The browser goes offline during an upload (a laptop on a train): the transfer pauses and
    says it goes on by itself, at once (not after 2.5 min of retries, and not as a failure that
    needs the file picked again); back online it continues from the server's offset and ends
    as one video with every byte."""
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "br")
    with chromium_page() as page:
        _login(page, gw, user)
        cdp, size = _big_chunk_under_way(page, tmp_path)
        # Offline through the same DevTools session as the throttle (a second one, playwright's
        # set_offline, leaves this one's conditions in force: requests went on).
        conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        cdp.send("Network.emulateNetworkConditions", {"offline": True, **conditions})
        page.wait_for_selector(".transfer[data-state=paused] .notice:not([hidden])", timeout=30000)
        assert "You're offline: the upload goes on by itself" in page.inner_text(".transfer .notice")
        assert page.locator(".transfer .resume").is_visible() and page.locator(".transfer .error").is_hidden()
        screenshots(page, "upload-offline")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, **conditions})
        page.wait_for_function("() => document.querySelector('.transfer').dataset.state === 'done'", timeout=120000)
        assert page.locator(".transfer .notice").is_hidden()
    rows = h.db_rows(env, "SELECT id, status, size_bytes FROM videos WHERE owner_id = %s", (user["id"],))
    assert len(rows) == 1 and rows[0]["status"] == "queued" and rows[0]["size_bytes"] == size
    assert len(h.db_rows(env, "SELECT id FROM uploads WHERE owner_id = %s", (user["id"],))) == 1


def test_edit_and_delete_in_page(live_stack, tmp_path):
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "br")
    src = h.make_video(tmp_path / "clip.mp4", seconds=1)
    with open(src, "rb") as f:
        import requests
        r = requests.post(f"{gw}/api/videos", headers=user["headers"], files={"file": ("clip.mp4", f)},
                          data={"title": "Before"}, timeout=60)
    assert r.status_code == 201
    vid = r.json()["video"]["id"]
    with chromium_page() as page:
        _login(page, gw, user)
        li = page.locator(f"li.video[data-id='{vid}']")
        li.locator(".edit").click()
        li.locator("input[name=title]").fill("After <script>window.__xss=2</script>")
        li.locator("select[name=visibility]").select_option("password")
        li.locator("input[name=password]").fill("letmein99")
        li.locator(".editor button[type=submit]").click()
        page.wait_for_function(f"() => document.querySelector(\"li.video[data-id='{vid}'] .visibility\").textContent === 'password'")
        assert li.locator(".title").inner_text() == "After <script>window.__xss=2</script>"
        page.on("dialog", lambda d: d.accept())
        li.locator(".delete").click()
        page.wait_for_selector(f"li.video[data-id='{vid}']", state="detached")
        assert page.evaluate("window.__xss") is None
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    assert h.video_objects(env, vid) == []


# Counts every change inside a live region (what a screen reader would announce).
WATCH_LIVE = """() => {
  window.__live = [];
  const live = '[aria-live]:not([aria-live=off]), [role=status], [role=alert], [role=log]';
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const region = el && el.closest(live);
      if (region) window.__live.push(region.textContent);
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""
UNNAMED_PROGRESS = """() => [document, ...[...document.querySelectorAll('template')].map((t) => t.content)]
  .flatMap((root) => [...root.querySelectorAll('progress')])
  .filter((p) => !p.getAttribute('aria-label') && !p.getAttribute('aria-labelledby') && !(p.labels || []).length).length"""
ROLELESS_LABELS = """() => [document, ...[...document.querySelectorAll('template')].map((t) => t.content)]
  .flatMap((root) => [...root.querySelectorAll('span[aria-label]:not([role]), div[aria-label]:not([role])')]).length"""


def test_upload_page_accessibility(live_stack, tmp_path):
    """Keyboard: the drop zone takes focus and Enter/Space open the file picker. Screen readers:
    milestones announced, not every progress tick; every progress bar has a name."""
    gw = live_stack["url"]
    user = h.new_user(gw, "a11y")
    video = h.pad_video(h.make_video(tmp_path / "src.mp4", seconds=1), tmp_path / "keys.mp4", 40 * MiB)
    with chromium_page() as page:
        _login(page, gw, user)
        assert page.get_attribute("#transfers", "aria-live") is None
        assert page.evaluate(UNNAMED_PROGRESS) == 0 and page.evaluate(ROLELESS_LABELS) == 0
        screenshots(page, "upload")
        page.evaluate(WATCH_LIVE)
        # page.press focuses the drop zone and presses in one step (the list loading in the
        # background may move focus between a separate focus() and press()).
        with page.expect_file_chooser(timeout=5000) as first:
            page.press("#drop", " ")
        assert page.evaluate("document.activeElement.id") == "drop"   # it is keyboard-focusable
        # Close that picker (no file) before the next: Chromium opens one chooser at a time.
        first.value.set_files([])
        with page.expect_file_chooser(timeout=5000) as chooser:
            page.press("#drop", "Enter")
        chooser.value.set_files(str(video))
        page.wait_for_selector(".transfer[data-state=done]", timeout=60000)
        page.wait_for_selector("li.video[data-status]")
        announced = page.evaluate("window.__live")
        assert announced and announced[-1] == "keys.mp4: uploaded", announced
        assert len(announced) <= 6, announced            # start, 25/50/75 %, done: not every tick
        assert page.evaluate(UNNAMED_PROGRESS) == 0
        screenshots(page, "upload-done")
