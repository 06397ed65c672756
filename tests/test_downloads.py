"""Forensically watermarked downloads through the real stack (docs/api.md "Downloads"): the
owner's toggle, the per-session single-use ticket, the MP4 assembled from the session's own
A/B variants with its metadata tag (checked against the stored objects, decrypted from the
sealed content secret, never from streaming-svc's code), the forensic trace of a download
naming the downloader's session, the refusals, and the Download button in real Chromium."""
from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from svcommon import codeword, mp4boxes
from svcommon.jobqueue import DETECTION_RUN
from svcommon.media_crypto import decrypt_segment
from svcommon.media_keys import encrypted_segment_key
from tests.support.browser import chromium_page, screenshots
from tests.support.contract_client import ContractClient, ContractError
from tests.support.dpop import DeviceKey
from tests.support.media import ONE_RUNG
from tests.support.page_checks import check_page, login
from tests.support.playback import events_of
from tests.support.sealed_media import keys_of, media_row
from tests.support.videos import make_ready_video, register_user, sql

pytestmark = pytest.mark.heavy
CLIP_SECONDS = 6            # 3 segments: enough for two codewords to agree somewhere and differ elsewhere
CLIP_SIZE = ONE_RUNG


@pytest.fixture(scope="module")
def gw(live_stack):
    return live_stack["url"]


@pytest.fixture(scope="module")
def owner(gw):
    return register_user(gw, "dlowner")


@pytest.fixture(scope="module")
def vid(live_stack, worker_app, mdb, stores, owner, clip):
    return make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Download clip")


@pytest.fixture(scope="module")
def content(mdb, vid, live_stack):
    return keys_of(mdb, live_stack["env"]["MEDIA_MASTER_KEY"], vid)


def bearer(gw, user) -> dict:
    """A fresh login (access tokens live 5 minutes; the module's owner outlives one)."""
    r = requests.post(f"{gw}/api/auth/login", json={"username": user["username"], "password": user["password"]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def allow(gw, user, vid, allowed=True, expect=200):
    r = requests.patch(f"{gw}/api/videos/{vid}", json={"downloads_allowed": allowed}, headers=bearer(gw, user))
    assert r.status_code == expect, r.text
    return r


def viewer(gw, prefix="dlviewer"):
    user = register_user(gw, prefix)
    return user, ContractClient(gw).login(user["username"], user["password"])


def ask(client, sid, **body):
    return client.call("POST", f"/api/stream/sessions/{sid}/download", body, expect=None)


def fetch(client, sid):
    ticket = ask(client, sid)
    assert ticket.status_code == 201, ticket.text
    r = requests.get(client.gateway + ticket.json()["download_url"])
    assert r.status_code == 200, r.text
    return r


def fragments(data: bytes) -> list[tuple[int, bytes]]:
    """(track id, mdat bytes) of every moof+mdat pair of an fMP4 file, in file order."""
    out, track = [], None
    for box in mp4boxes.walk_bytes(data):
        if box.kind == b"moof":
            traf = next(b for b in mp4boxes.walk_bytes(data, box.body, box.end) if b.kind == b"traf")
            tfhd = next(b for b in mp4boxes.walk_bytes(data, traf.body, traf.end) if b.kind == b"tfhd")
            track = int.from_bytes(data[tfhd.body + 4:tfhd.body + 8], "big")
        elif box.kind == b"mdat":
            out.append((track, data[box.body:box.end]))
    return out


def stored_mdat(stores, content, rendition, variant, index) -> bytes:
    track = "audio" if rendition == "audio" else "video"
    body = stores["streaming"].get_bytes(encrypted_segment_key(content.video_id, rendition,
                                                               content.file_name(rendition, variant, index)))
    plain = decrypt_segment(content.segment_key(track, variant, index), content.video_id, rendition, index, body)
    return fragments(plain)[0][1]


def test_downloads_are_off_by_default_and_only_the_owner_toggles_them(gw, vid, owner, mdb):
    assert sql(mdb, "SELECT downloads_allowed FROM videos WHERE id = %s", (vid,), one=True)["downloads_allowed"] == 0
    user, client = viewer(gw)
    s = client.open_session(vid)
    r = ask(client, s.id)
    assert r.status_code == 403 and r.json()["code"] == "downloads_not_allowed", r.text
    allow(gw, user, vid, expect=404)                                   # not the owner: no such video for them
    assert allow(gw, owner, vid, "yes", expect=400).json()["code"] == "invalid_input"
    assert allow(gw, owner, vid).json()["video"]["downloads_allowed"] is True
    assert requests.get(f"{gw}/watch/{vid}", cookies={"sv_access": user["access_token"]}).text.count(
        'id="download"') == 1
    assert ask(client, s.id).status_code == 201


def test_a_download_is_the_sessions_stream_and_traces_back_to_it(gw, vid, owner, mdb, stores, content, live_stack,
                                                                  worker_app, tmp_path):
    allow(gw, owner, vid)
    secret = live_stack["env"]["WATERMARK_SECRET"]
    meta = media_row(mdb, vid)["metadata"]
    n = meta["segment_count"]
    x_user, x = viewer(gw, "leaker")
    sx = x.open_session(vid)
    y_user, y = viewer(gw, "other")
    # Y's session: one whose codeword agrees with X's somewhere and differs somewhere (ids are the server's)
    for _ in range(20):
        sy = y.open_session(vid)
        differ = [codeword.variant(secret, sx.id, i) != codeword.variant(secret, sy.id, i) for i in range(n)]
        if any(differ) and not all(differ):
            break
        y.end(sy)
    else:
        pytest.fail("no pair of sessions with mixed codewords in 20 tries")
    rx = fetch(x, sx.id)
    assert rx.headers["Content-Type"] == "video/mp4" and rx.headers["Cache-Control"] == "no-store"
    assert rx.headers["Content-Disposition"].startswith('attachment; filename="Download clip (360p).mp4"')
    leak = tmp_path / "download.mp4"
    leak.write_bytes(rx.content)
    ydata = fetch(y, sy.id).content

    # A valid MP4: both streams, the whole duration, every frame decodes.
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(leak)], check=True, capture_output=True, text=True).stdout)
    assert sorted(st["codec_type"] for st in probe["streams"]) == ["audio", "video"]
    assert abs(float(probe["format"]["duration"]) - CLIP_SECONDS) < 0.5, probe["format"]
    decode = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(leak), "-f", "null", "-"],
                            capture_output=True, text=True)
    assert decode.returncode == 0 and not decode.stderr, decode.stderr

    # Layer 2: X's MAC'd tag, and no other. Layer 1: per index, the variant X's codeword picks.
    assert [(t.session_id, t.valid) for t in codeword.find_tags(secret, rx.content)] == [(sx.id, True)]
    rendition = meta["renditions"][0]["name"]
    xv = [m for t, m in fragments(rx.content) if t == 1]
    yv = [m for t, m in fragments(ydata) if t == 1]
    assert len(xv) == len(yv) == n
    for i in range(n):
        assert xv[i] == stored_mdat(stores, content, rendition, codeword.variant(secret, sx.id, i), i)
        assert (xv[i] != yv[i]) == differ[i], i           # the downloads differ exactly where the codewords do
    assert [m for t, m in fragments(rx.content) if t == 2] == [
        stored_mdat(stores, content, "audio", "-", i) for i in range(len(meta["audio"]["segment_sizes"]))]

    # The trace (watermark-svc forensics through its API, the real worker) names X's session.
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin",
                                                        "password": live_stack["env"]["ADMIN_PASSWORD"]}).json()
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    with open(leak, "rb") as fh:
        r = requests.post(f"{gw}/api/forensics/detect", files={"file": ("shared.mp4", fh, "video/mp4")},
                          headers=headers)
    assert r.status_code == 202, r.text
    from watermark_svc.jobs import run_once
    assert run_once(worker_app, "test-download-trace", kinds=[DETECTION_RUN])
    result = requests.get(f"{gw}/api/forensics/detect/{r.json()['job_id']}", headers=headers).json()
    assert result["status"] == "done", result
    match = result["result"]["match"]
    assert match["session_id"] == sx.id and match["user"]["username"] == x_user["username"]
    assert match["device_id"] == x.device_id and result["result"]["metadata_layer"]["valid"] == [sx.id]

    # Recorded, once per session.
    assert events_of(mdb, x_user["id"], "download_issued") == 1 and events_of(mdb, x_user["id"], "video_downloaded") == 1
    again = ask(x, sx.id)
    assert again.status_code == 409 and again.json()["code"] == "already_downloaded"


def test_tickets_are_single_use_bound_and_refused_when_access_ends(gw, vid, owner, mdb):
    allow(gw, owner, vid)
    user, client = viewer(gw)
    s = client.open_session(vid)
    ticket = ask(client, s.id).json()
    url = gw + ticket["download_url"]
    assert requests.get(url.rsplit("/", 1)[0] + "/" + "A" * 43).status_code == 404           # forged ticket
    assert requests.get(url).status_code == 200
    used = requests.get(url)
    assert used.status_code == 410 and used.json()["code"] == "ticket_used"

    # Another user, or another device key of the same user, cannot ask for this session's ticket.
    _, other = viewer(gw)
    s2 = client.open_session(vid)
    assert ask(other, s2.id).status_code == 404
    thief = ContractClient(gw, device=DeviceKey()).login(user["username"], user["password"])
    stolen = ask(thief, s2.id)
    assert stolen.status_code == 403 and stolen.json()["code"] == "wrong_device"
    assert ask(client, s2.id, rendition="4k").json()["code"] == "invalid_input"

    # An expired ticket; then the owner switches downloads off; then the video turns private.
    t2 = ask(client, s2.id).json()
    sql(mdb, "UPDATE playback_sessions SET download_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND "
             "WHERE id = %s", (s2.id,))
    expired = requests.get(gw + t2["download_url"])
    assert expired.status_code == 410 and expired.json()["code"] == "ticket_expired"
    s3 = client.open_session(vid)
    t3 = ask(client, s3.id).json()
    allow(gw, owner, vid, False)
    off = requests.get(gw + t3["download_url"])
    assert off.status_code == 403 and off.json()["code"] == "downloads_not_allowed"
    client.end(s)
    client.end(s2)
    allow(gw, owner, vid)
    s4 = client.open_session(vid)
    t4 = ask(client, s4.id).json()
    requests.patch(f"{gw}/api/videos/{vid}", json={"visibility": "private"},
                   headers=bearer(gw, owner)).raise_for_status()
    try:
        private = requests.get(gw + t4["download_url"])
        assert private.status_code == 403 and private.json()["code"] == "access_revoked", private.text
        refused = client.call("POST", "/api/stream/sessions", {"video_id": vid, "client_public_key": {}},
                              expect=None)
        assert refused.status_code == 403 and refused.json()["code"] == "private"
    finally:
        requests.patch(f"{gw}/api/videos/{vid}", json={"visibility": "public"},
                       headers=bearer(gw, owner)).raise_for_status()


def test_downloads_are_limited_per_hour(gw, vid, owner, mdb):
    allow(gw, owner, vid)
    user, client = viewer(gw, "hoarder")
    for _ in range(10):                                                  # DOWNLOADS_PER_HOUR
        s = client.open_session(vid)
        assert ask(client, s.id).status_code == 201
        client.end(s)
    s = client.open_session(vid)
    r = ask(client, s.id)
    assert r.status_code == 429 and r.json()["code"] == "download_limit"
    assert 3500 <= int(r.headers["Retry-After"]) <= 3601
    assert events_of(mdb, user["id"], "download_limit") == 1


def test_download_limit_holds_against_tickets_asked_at_the_same_instant(gw, vid, owner, mdb):
    """DOWNLOADS_PER_HOUR (10) against 14 tickets asked at once, each for a download session
    of its own on a device of its own: 10 issued, 4 refused with 429 (the hourly count was read
    in a snapshot older than the wait for the user's lock, so all 14 could pass)."""
    allow(gw, owner, vid)
    user, first = viewer(gw, "dlrace")
    clients = [first] + [ContractClient(gw).login(user["username"], user["password"]) for _ in range(13)]
    sessions = [c.open_session(vid, purpose="download") for c in clients]
    start = threading.Barrier(len(clients))

    def ticket(i: int) -> int:
        start.wait()
        return ask(clients[i], sessions[i].id).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        codes = sorted(pool.map(ticket, range(len(clients))))
    assert codes == [201] * 10 + [429] * 4, codes


def test_download_only_sessions_never_keep_a_viewer_from_watching(gw, vid, owner, mdb):
    """Every stream slot taken by playback sessions: a download-only session is still opened,
    gets no keys (none with the session, 403 download_session when asked), downloads, and
    ends as its download starts. It used to be a playback session holding a slot: three
    downloads from a page that was not playing and the viewer could not watch."""
    allow(gw, owner, vid)
    user, client = viewer(gw, "dlonly")
    playing, refused = [], None
    for _ in range(10):                                   # MAX_CONCURRENT_STREAMS of the stack
        try:
            playing.append(client.open_session(vid))
        except ContractError as err:
            refused = err
            break
    assert refused is not None and refused.code == "stream_limit" and playing, refused
    for _ in range(2):
        s = client.open_session(vid, purpose="download")
        assert s.raw["keys"]["video"] == [] and s.raw["keys"]["audio"] == []
        keys = client.call("POST", f"/api/stream/sessions/{s.id}/keys", {"track": "video", "from": 0, "count": 1},
                           expect=None)
        assert keys.status_code == 403 and keys.json()["code"] == "download_session", keys.text
        assert fragments(fetch(client, s.id).content)
        row = sql(mdb, "SELECT purpose, end_reason, ended_at FROM playback_sessions WHERE id = %s", (s.id,), one=True)
        assert (row["purpose"], row["end_reason"]) == ("download", "downloaded") and row["ended_at"] is not None
    with pytest.raises(ContractError) as still:           # the playback limit itself is unchanged
        client.open_session(vid)
    assert still.value.code == "stream_limit"
    for s in playing:
        client.end(s)


@pytest.mark.browser
def test_owner_allows_downloads_and_a_viewer_downloads_in_chromium(gw, vid, owner, mdb, live_stack, tmp_path):
    allow(gw, owner, vid, False)
    secret = live_stack["env"]["WATERMARK_SECRET"]
    watcher = register_user(gw, "dlbrowser")
    with chromium_page() as page:
        login(page, gw, owner, "/upload/")
        row = page.locator(f"li[data-id='{vid}']")
        row.locator("button.edit").click()
        assert not row.locator("input[name=downloads_allowed]").is_checked()
        row.locator("input[name=downloads_allowed]").check()
        screenshots(page, "dashboard-downloads")
        row.locator(".editor button[type=submit]").click()
        row.locator(".badge.downloads:not([hidden])").wait_for()
        assert sql(mdb, "SELECT downloads_allowed FROM videos WHERE id = %s", (vid,), one=True)["downloads_allowed"]
        page.context.clear_cookies()
        login(page, gw, watcher, f"/watch/{vid}")
        check_page(page, "watch-download", controls=("#download", "#share"))
        with page.expect_download(timeout=60_000) as dl:
            page.click("#download")
        saved = tmp_path / "browser.mp4"
        dl.value.save_as(saved)
        page.wait_for_selector("#download-status:has-text('Download started')")
        screenshots(page, "watch-download-started")
        tags = codeword.find_tags(secret, saved.read_bytes())
        assert len(tags) == 1 and tags[0].valid
        session = sql(mdb, "SELECT user_id, download_used_at FROM playback_sessions WHERE id = %s",
                      (tags[0].session_id,), one=True)
        assert session["user_id"] == watcher["id"] and session["download_used_at"] is not None
        ended = sql(mdb, "SELECT purpose, end_reason FROM playback_sessions WHERE id = %s", (tags[0].session_id,),
                    one=True)
        assert (ended["purpose"], ended["end_reason"]) == ("download", "downloaded")   # it held no stream slot
        # Downloading again from the same page takes a new session (each is downloaded once).
        with page.expect_download(timeout=60_000) as dl2:
            page.click("#download")
        again = tmp_path / "again.mp4"
        dl2.value.save_as(again)
        second = codeword.find_tags(secret, again.read_bytes())[0].session_id
        assert second != tags[0].session_id
