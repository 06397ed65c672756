"""Seek-preview storyboards (issue #16 item 3) against the real stack: the 'video.storyboard'
job makes JPEG sprites (geometry and the frame in each tile checked by decoding them with
ffmpeg) and a WebVTT thumbnail track covering the duration; a failed storyboard job leaves the
video ready and playable without an image track; a session's DASH manifest lists the DASH-IF
thumbnail AdaptationSet and its sprites are served under the session's own path only (never
under the public /media/, not to a forged URL, not once access is lost, not to a viewer
without access); deleting the video removes them; and in Chromium, hovering the seek bar
shows the tile of the time under the pointer at desktop and phone sizes (screenshots under
var/test/screenshots/player-storyboard-*)."""
from __future__ import annotations

import re
import subprocess
import time

import numpy as np
import pytest
import requests

from svcommon.storyboards import storyboard_key, storyboard_prefix
from tests.support.browser import SCREENSHOTS, SIZES, chromium_page, watch_until
from tests.support.contract_client import ContractClient, ContractError, thumbnail_set
from tests.support.media import ONE_RUNG
from tests.support.page_checks import login
from tests.support.playback import get_until
from tests.support.videos import queue_video, register_user, run_video, sql

pytestmark = pytest.mark.heavy
CLIP_SECONDS = 4
CLIP_SIZE = ONE_RUNG                    # 640x360: tiles of 160x90, one tile a second, 4 in one sprite
TILE_W, TILE_H, TILES = 160, 90, 4
OTHER_WORK = "kind NOT IN ('video.storyboard', 'video.reference') AND status IN ('queued', 'running')"


@pytest.fixture(scope="module")
def gw(live_stack):
    return live_stack["url"]


@pytest.fixture(scope="module")
def owner(gw):
    user = register_user(gw, "sbowner")
    return {**user, "api": ContractClient(gw).login(user["username"], user["password"])}


@pytest.fixture(scope="module")
def viewer(gw):
    user = register_user(gw, "sbviewer")
    return {**user, "api": ContractClient(gw).login(user["username"], user["password"])}


@pytest.fixture(scope="module")
def planned(worker_app, mdb, stores, owner, clip):
    """A public video processed up to its storyboard: playable, the storyboard job still queued
    (it comes after every chunk). Its forensic reference is not this module's subject: dropped."""
    vid = queue_video(mdb, stores, owner["id"], clip, title="Storyboard clip")
    run_video(worker_app, mdb, vid, until=lambda: not sql(mdb, f"SELECT id FROM jobs WHERE subject = %s AND "
                                                               f"{OTHER_WORK}", (vid,)))
    sql(mdb, "DELETE FROM jobs WHERE subject = %s AND kind = 'video.reference'", (vid,))
    return vid


@pytest.fixture(scope="module")
def storyboarded(planned, worker_app, mdb):
    """The same video once its storyboard job has run."""
    run_video(worker_app, mdb, planned)
    assert sql(mdb, "SELECT status FROM jobs WHERE subject = %s AND kind = 'video.storyboard' "
                    "ORDER BY created_at DESC LIMIT 1", (planned,), one=True)["status"] == "done"
    return planned


def storyboard_objects(stores, vid) -> set[str]:
    prefix = storyboard_prefix(vid)
    return {o["key"][len(prefix):] for o in stores["watermark"].list(prefix)}


def board_row(mdb, vid):
    import json
    row = sql(mdb, "SELECT metadata FROM video_storyboards WHERE video_id = %s", (vid,), one=True)
    return json.loads(row["metadata"]) if row else None


def manifest(api, session) -> str:
    return api.http.get(session.manifest_url).text


def storyboarded_session(api, vid: str, timeout_s: float = 15):
    """A session that has the storyboard: streaming-svc re-reads a video that had none when
    it last looked every 5 s (live.GROWING_LADDER_SECONDS), so a new one shows within that."""
    deadline = time.monotonic() + timeout_s
    while (s := api.open_session(vid)).raw["storyboard_url"] is None:
        api.end(s)
        assert time.monotonic() < deadline, "the storyboard never showed in a session"
        time.sleep(0.5)
    return s


def test_failed_storyboard_job_leaves_the_video_playable(planned, worker_app, mdb, stores, viewer, clip):
    """The storyboard job fails for real (the original is gone from the store and from the
    worker's copy): dead after its one attempt, its partial output removed, the video still
    ready with its stage line untouched, sessions open and the manifest has no image track.
    Then the original is back, and the storyboards command (for videos without one) queues
    the job again: it makes the storyboard."""
    from watermark_svc.jobs import run_once
    from watermark_svc.originals import cache_of
    from watermark_svc.storyboards import queue_missing
    vid = planned
    job = sql(mdb, "SELECT id FROM jobs WHERE subject = %s AND kind = 'video.storyboard' AND status = 'queued'",
              (vid,), one=True)
    assert job, "the storyboard job is queued after the video became playable"
    before = sql(mdb, "SELECT status, status_message FROM videos WHERE id = %s", (vid,), one=True)
    assert before["status"] == "ready"
    original = sql(mdb, "SELECT original_key FROM videos WHERE id = %s", (vid,), one=True)["original_key"]
    stores["upload"].delete(original)
    cache_of(worker_app).drop(vid)
    sql(mdb, "UPDATE jobs SET max_attempts = 1 WHERE id = %s", (job["id"],))
    assert run_once(worker_app, "sb-failing", kinds=("video.storyboard",))
    dead = sql(mdb, "SELECT status, last_error FROM jobs WHERE id = %s", (job["id"],), one=True)
    assert dead["status"] == "dead" and dead["last_error"], dead
    assert sql(mdb, "SELECT status, status_message FROM videos WHERE id = %s", (vid,), one=True) == before
    assert storyboard_objects(stores, vid) == set() and board_row(mdb, vid) is None
    api = viewer["api"]
    s = api.open_session(vid)
    assert s.raw["storyboard_url"] is None
    assert 'contentType="image"' not in manifest(api, s) and thumbnail_set(manifest(api, s), s.manifest_url) is None
    assert api.http.get(s.manifest_url.replace("manifest.mpd", "storyboard/1.jpg")).status_code == 404
    api.end(s)
    stores["upload"].put_stream(original, clip, length=len(clip), content_type="video/mp4")
    assert queue_missing(mdb, vid) == [vid]
    assert queue_missing(mdb, vid) == []            # queued already: not twice
    # Queued at the plain storyboard priority; here it must come before jobs other test
    # modules may have left queued (run_video's worker takes the highest first).
    sql(mdb, "UPDATE jobs SET priority = 2000000000 WHERE subject = %s AND status = 'queued'", (vid,))
    run_video(worker_app, mdb, vid)
    assert board_row(mdb, vid) is not None


def test_sprites_and_vtt_track(storyboarded, mdb, stores, clip, tmp_path):
    vid = storyboarded
    board = board_row(mdb, vid)
    assert {k: board[k] for k in ("interval", "tiles", "tile_width", "tile_height", "columns", "rows")} == \
        {"interval": 1, "tiles": TILES, "tile_width": TILE_W, "tile_height": TILE_H, "columns": TILES, "rows": 1}
    assert storyboard_objects(stores, vid) == {"1.jpg", "thumbnails.vtt"}
    sprite = tmp_path / "1.jpg"
    sprite.write_bytes(stores["watermark"].get_bytes(storyboard_key(vid, "1.jpg")))
    assert board["sprite_bytes"] == [sprite.stat().st_size]
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of",
                            "csv=p=0", str(sprite)], capture_output=True, text=True, check=True).stdout.strip()
    assert probe == f"mjpeg,{TILES * TILE_W},{TILE_H}"
    # Tile i shows the frame at i seconds: of all the original's frames (30 fps), frame 30 i
    # is the one it matches best.
    original = tmp_path / "clip.mp4"
    original.write_bytes(clip)
    tiles = gray(sprite, TILES * TILE_W, TILE_H)[0].reshape(TILE_H, TILES, TILE_W).transpose(1, 0, 2)
    frames = gray(original, TILE_W, TILE_H)
    assert [int(np.argmin(np.abs(frames - t).mean(axis=(1, 2)))) for t in tiles] == [30 * i for i in range(TILES)]
    # The WebVTT track: one cue per tile, back to back from 0 to the end of the video.
    duration = sql(mdb, "SELECT duration FROM video_media WHERE video_id = %s", (vid,), one=True)["duration"]
    vtt = stores["watermark"].get_bytes(storyboard_key(vid, "thumbnails.vtt")).decode()
    assert vtt.startswith("WEBVTT\n")
    cues = re.findall(r"(\d\d):(\d\d):(\d\d\.\d{3}) --> (\d\d):(\d\d):(\d\d\.\d{3})\n(\S+)", vtt)
    assert len(cues) == TILES
    t = 0.0
    for i, (h1, m1, s1, h2, m2, s2, ref) in enumerate(cues):
        start, end = 3600 * int(h1) + 60 * int(m1) + float(s1), 3600 * int(h2) + 60 * int(m2) + float(s2)
        assert start == pytest.approx(t) and end > start
        assert ref == f"1.jpg#xywh={i * TILE_W},0,{TILE_W},{TILE_H}"
        t = end
    assert t == pytest.approx(CLIP_SECONDS, abs=0.1) and t >= duration - 0.1


def gray(path, width: int, height: int) -> np.ndarray:
    """Every frame of ``path`` as grey levels at width x height: (frames, height, width)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={width}:{height}:flags=bilinear",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width).astype(np.float32)


def test_manifest_lists_the_image_track_and_access_is_the_videos(storyboarded, gw, owner, viewer, stores, mdb):
    vid = storyboarded
    api = viewer["api"]
    s = storyboarded_session(api, vid)
    thumbs = thumbnail_set(manifest(api, s), s.manifest_url)
    assert thumbs is not None
    assert (thumbs.columns, thumbs.rows, thumbs.width, thumbs.height, thumbs.seconds, thumbs.start_number) == \
        (TILES, 1, TILES * TILE_W, TILE_H, TILES, 1)
    base = s.manifest_url[:-len("manifest.mpd")]
    assert thumbs.url(1) == base + "storyboard/1.jpg"
    r = api.http.get(thumbs.url(1))
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert r.headers["Cache-Control"] == "private, max-age=600"            # the viewer's browser only
    assert r.content == stores["watermark"].get_bytes(storyboard_key(vid, "1.jpg"))
    assert s.raw["storyboard_url"] == base[len(gw):] + "storyboard/thumbnails.vtt"
    track = api.http.get(gw + s.raw["storyboard_url"])
    assert track.status_code == 200 and track.headers["Content-Type"].startswith("text/vtt")
    assert track.text.startswith("WEBVTT") and "1.jpg#xywh=0,0,160,90" in track.text
    # Never public: not under /media/, not past the sprites there are, not with a forged token.
    for url in (f"{gw}/media/{vid}/storyboard/1.jpg", f"{gw}/media/{vid}/storyboard/00001-{'0' * 32}.m4s",
                base + "storyboard/2.jpg", base + "storyboard/0.jpg", base + "storyboard/x.jpg"):
        answer = requests.get(url)
        assert answer.status_code == 404 and answer.headers["Cache-Control"] == "no-store", url
    forged = re.sub(r"/m/([0-9a-f]{32})/[^/]+/", r"/m/\1/" + "A" * 43 + "/", thumbs.url(1))
    assert requests.get(forged).status_code == 404
    # Private: the viewer's session loses access (the sprite URL is refused), and a new one
    # cannot open; the owner still can, sprites included.
    owner_api = owner["api"]
    edit = lambda visibility: requests.patch(  # noqa: E731
        f"{gw}/api/videos/{vid}", json={"visibility": visibility},
        headers={"Authorization": f"Bearer {owner_api.access_token}"})
    assert edit("private").status_code == 200
    try:
        refused = get_until(thumbs.url(1), lambda resp: resp.status_code != 200)
        assert refused.status_code in (403, 410) and refused.headers["Cache-Control"] == "no-store", refused.text
        assert "image" not in refused.headers["Content-Type"]
        with pytest.raises(ContractError) as err:
            api.open_session(vid)
        assert err.value.status == 403
        mine = owner_api.open_session(vid)
        own = thumbnail_set(manifest(owner_api, mine), mine.manifest_url)
        assert owner_api.http.get(own.url(1)).status_code == 200
        owner_api.end(mine)
    finally:
        assert edit("public").status_code == 200


@pytest.mark.browser
def test_seek_bar_hover_shows_the_storyboard_tile(storyboarded, gw, viewer):
    """Hovering the seek bar shows the tile of the time under the pointer: the sprite from the
    session's storyboard path as the preview's background, offset to that tile, inside the
    player at both ends of the bar, at desktop and phone sizes."""
    with chromium_page() as page:
        login(page, gw, viewer, f"/watch/{storyboarded}")
        page.click("#play")
        watch_until(page, "parseFloat(document.getElementById('seek').max) > 0 "
                          "&& svPlayer().getImageTracks().length === 1")
        page.evaluate("document.getElementById('video').pause()")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.locator("#player").scroll_into_view_if_needed()
            for t, tile in ((2.5, 2), (0.0, 0), (3.9, 3)):
                seen = hover(page, t)
                assert re.search(r'url\("[^"]*/api/stream/m/[0-9a-f]{32}/[^/]+/storyboard/1\.jpg"\)', seen["image"]), seen
                assert seen["position"] == (f"-{tile * TILE_W}px 0px" if tile else "0px 0px"), seen
                assert (seen["width"], seen["height"]) == (f"{TILE_W}px", f"{TILE_H}px"), seen
                assert seen["inside"], seen          # never clipped by the player's edges
                if t == 2.5:
                    page.locator("#player").screenshot(path=str(SCREENSHOTS / f"player-storyboard-{size}.png"))
        # The sprite really loads in the page (the same URL the preview shows).
        url = re.search(r'url\("([^"]+)"\)', seen["image"]).group(1)
        assert page.evaluate("""(u) => new Promise((ok) => { const i = new Image();
            i.onload = () => ok([i.naturalWidth, i.naturalHeight]); i.onerror = () => ok(null); i.src = u; })""",
                             url) == [TILES * TILE_W, TILE_H]
        assert page.evaluate("svPlayback.errors") == []


def hover(page, t: float) -> dict:
    """Move the pointer over the seek bar at time ``t``; the preview's image as shown."""
    box = page.locator("#seek").bounding_box()
    duration = page.evaluate("parseFloat(document.getElementById('seek').max)")
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] * min(t, duration) / duration, box["y"] + box["height"] / 2)
    watch_until(page, f"Math.abs(parseFloat(document.getElementById('preview').dataset.time) - {t}) < 0.2 "
                      "&& !document.querySelector('.preview-image').hidden", timeout_s=10)
    return page.evaluate("""() => { const i = document.querySelector('.preview-image');
        const p = document.getElementById('preview').getBoundingClientRect();
        const s = document.getElementById('stage').getBoundingClientRect();
        return { image: i.style.backgroundImage, position: getComputedStyle(i).backgroundPosition,
                 width: getComputedStyle(i).width, height: getComputedStyle(i).height,
                 inside: p.left >= s.left - 0.5 && p.right <= s.right + 0.5 }; }""")


def test_deleting_the_video_deletes_its_storyboard(storyboarded, gw, owner, stores, mdb):
    vid = storyboarded
    assert storyboard_objects(stores, vid)
    r = requests.delete(f"{gw}/api/videos/{vid}", headers={"Authorization": f"Bearer {owner['api'].access_token}"})
    assert r.status_code in (200, 204), r.text
    assert storyboard_objects(stores, vid) == set()
    assert sql(mdb, "SELECT COUNT(*) AS n FROM video_storyboards WHERE video_id = %s", (vid,), one=True)["n"] == 0
