"""Caption tracks (issue #16 item 2): uploaders add WebVTT (SRT converted) per language through
upload-svc, malformed or oversized files are refused with the line or the limit named, only the
owner manages them, every session's DASH manifest lists them and streaming-svc serves them only
behind a live session's media token, deleting a track or the video leaves nothing behind; the
watch page shows the cue (captions menu, `c` key) and the dashboard's editor manages them.
Screenshots under var/test/screenshots/ (captions-*)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import requests

from tests import ingest_helpers as h
from tests.support.browser import chromium_page, screenshots, watch_until
from tests.support.contract_client import ContractClient, ContractError
from tests.support.media import ONE_RUNG
from tests.support.page_checks import check_page, login
from tests.support.playback import get_until
from tests.support.videos import make_ready_video, sql

CLIP_SECONDS = 4
CLIP_SIZE = ONE_RUNG
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
CUE = "Hello from the captions"
VTT = f"WEBVTT\n\nintro\n00:00:00.000 --> 00:00:30.000\n{CUE}\n\n00:00:30.000 --> 00:00:31.000\nLater\n"
SRT = "1\r\n00:00:00,000 --> 00:00:30,000\r\nBonjour <i>les sous-titres</i>\r\n\r\n2\r\n00:00:30,000 --> 00:00:31,000\r\nFin\r\n"
MALFORMED = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nfine\n\n00:00:02.000 --> 00:00:0x.000\nbroken\n"


@pytest.fixture(scope="module")
def gw(live_stack):
    return live_stack["url"]


@pytest.fixture(scope="module")
def owner(gw):
    return h.new_user(gw, "capowner")


@pytest.fixture(scope="module")
def video(worker_app, mdb, stores, owner, clip):
    return make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Captioned clip")


def add(gw, user, vid, lang, body, name="track.vtt", label=None):
    data = {"lang": lang, **({"label": label} if label else {})}
    return requests.post(f"{gw}/api/videos/{vid}/captions", headers=user["headers"], data=data,
                         files={"file": (name, body)}, timeout=30)


def text_sets(mpd: str) -> list[dict]:
    root = ET.fromstring(mpd)
    return [{"lang": a.get("lang"), "label": a.findtext("d:Label", namespaces=MPD_NS),
             "url": a.findtext("d:Representation/d:BaseURL", namespaces=MPD_NS)}
            for a in root.iterfind(".//d:AdaptationSet[@contentType='text']", MPD_NS)]


def caption_objects(env, vid) -> list[str]:
    return h.s3_keys(env, f"captions/{vid}/")


def test_caption_api_formats_limits_owner_and_sessions(gw, live_stack, mdb, owner, video):
    env = live_stack["env"]
    r = add(gw, owner, video, "en", VTT.encode(), label="English")
    assert r.status_code == 201, r.text
    en = r.json()["caption"]
    assert (en["lang"], en["label"], en["cues"], en["source_format"]) == ("en", "English", 2, "vtt")
    r = add(gw, owner, video, "fr", SRT.encode(), name="sous-titres.srt")
    assert r.status_code == 201, r.text
    fr = r.json()["caption"]
    assert (fr["label"], fr["cues"], fr["source_format"]) == ("fr", 2, "srt")     # label defaults to the tag
    stored = h.s3_client(env).get_object(Bucket=env["S3_BUCKET"], Key=f"captions/{video}/{fr['id']}.vtt")
    assert stored["Body"].read().decode().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:30.000\nBonjour")
    before = sorted(caption_objects(env, video))
    assert len(before) == 2

    # Refusals: the line of a malformed cue, the limits, a taken language, a stranger; nothing written.
    r = add(gw, owner, video, "de", MALFORMED.encode())
    assert (r.status_code, r.json()["code"]) == (400, "caption_malformed") and r.json()["error"].startswith("line 6:")
    r = add(gw, owner, video, "de", b"not captions at all", name="notes.txt")
    assert (r.status_code, r.json()["code"]) == (400, "caption_format")
    r = add(gw, owner, video, "de", b"WEBVTT\n\n" + b"\xff\xfe\n")
    assert (r.status_code, r.json()["code"]) == (400, "caption_encoding")
    big = (VTT + "\n" + "x" * 100 + "\n") * 3000
    r = add(gw, owner, video, "de", big.encode()[:512 * 1024 + 1])
    assert (r.status_code, r.json()["code"]) == (413, "too_large")
    many = "WEBVTT\n\n" + "".join(f"00:00:{i // 1000:02d}.{i % 1000:03d} --> 00:00:59.000\nc\n\n" for i in range(5001))
    r = add(gw, owner, video, "de", many.encode())
    assert (r.status_code, r.json()["code"]) == (400, "too_many_cues")
    r = add(gw, owner, video, "EN", VTT.encode())
    assert (r.status_code, r.json()["code"]) == (409, "caption_exists")
    r = add(gw, owner, video, "english!", VTT.encode())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_input")
    stranger = h.new_user(gw, "capstranger")
    assert add(gw, stranger, video, "de", VTT.encode()).status_code == 404
    assert requests.get(f"{gw}/api/videos/{video}/captions", headers=stranger["headers"]).status_code == 404
    assert requests.delete(f"{gw}/api/videos/{video}/captions/{en['id']}", headers=stranger["headers"]).status_code == 404
    assert sorted(caption_objects(env, video)) == before
    listed = requests.get(f"{gw}/api/videos/{video}/captions", headers=owner["headers"]).json()["items"]
    assert [(c["lang"], c["label"]) for c in listed] == [("en", "English"), ("fr", "fr")]

    # A viewer's session lists both tracks; the files come only through that session's token.
    client = ContractClient(gw).login(stranger["username"], stranger["password"])
    s = client.open_session(video)
    mpd = requests.get(s.manifest_url, timeout=10)
    sets = text_sets(mpd.text)
    assert [(t["lang"], t["label"]) for t in sets] == [("en", "English"), ("fr", "fr")]
    assert client.representations(s)          # the contract's audio/video reading is unchanged
    en_url = gw + sets[0]["url"]
    got = requests.get(en_url, timeout=10)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/vtt")
    assert CUE in got.text and got.headers["Cache-Control"] == "no-store"
    forged = re.sub(r"/m/([0-9a-f]{32})/[^/]+/", r"/m/\1/AAAAAAAAAAAAAAAAAAAAAA/", en_url)
    assert requests.get(forged, timeout=10).status_code == 404
    other = requests.get(en_url.replace(en["id"], "0" * 32), timeout=10)
    assert other.status_code == 404

    # Made private: the viewer's session ends, and with it the caption URL; no new session.
    r = requests.patch(f"{gw}/api/videos/{video}", headers=owner["headers"], json={"visibility": "private"})
    assert r.status_code == 200, r.text
    assert get_until(en_url, lambda resp: resp.status_code != 200).status_code in (403, 410)
    with pytest.raises(ContractError) as err:
        client.open_session(video)
    assert (err.value.status, err.value.code) == (403, "private")
    requests.patch(f"{gw}/api/videos/{video}", headers=owner["headers"], json={"visibility": "public"})

    # Deleting a track removes its object and row; the next manifest lists the other one.
    r = requests.delete(f"{gw}/api/videos/{video}/captions/{fr['id']}", headers=owner["headers"])
    assert r.status_code == 204
    assert caption_objects(env, video) == [f"captions/{video}/{en['id']}.vtt"]
    s = client.open_session(video)
    assert [t["lang"] for t in text_sets(requests.get(s.manifest_url, timeout=10).text)] == ["en"]
    client.end(s)


def test_dashboard_editor_and_watch_page_show_captions(gw, live_stack, mdb, owner, video):
    """The editor's Captions section: add (a malformed file names its line), list, delete; the
    watch page then renders the cue (captions menu, `c` off and on); deleting the video
    removes every caption object and row."""
    env = live_stack["env"]
    showing = ("(() => { const t = [...document.getElementById('video').textTracks].find(t => t.mode === 'showing');"
               " return t && t.activeCues && t.activeCues.length ? t.activeCues[0].text : ''; })()")
    if not requests.get(f"{gw}/api/videos/{video}/captions", headers=owner["headers"]).json()["items"]:
        assert add(gw, owner, video, "en", VTT.encode(), label="English").status_code == 201   # run alone
    with chromium_page() as page:
        login(page, gw, owner, "/upload/")
        row = f"li.video[data-id='{video}']"
        page.click(f"{row} button.edit")
        panel = f"{row} .captions-panel"
        page.wait_for_selector(f"{panel} .caption-list li[data-lang='en']")
        page.fill(f"{panel} input[name=lang]", "de")
        page.fill(f"{panel} input[name=label]", "Deutsch")
        page.set_input_files(f"{panel} input[name=file]", files=[
            {"name": "kaputt.vtt", "mimeType": "text/vtt", "buffer": MALFORMED.encode()}])
        page.click(f"{panel} button[type=submit]")
        page.wait_for_selector(f"{panel} .error:not([hidden])")
        assert "line 6" in page.inner_text(f"{panel} .error")
        page.set_input_files(f"{panel} input[name=file]", files=[
            {"name": "de.srt", "mimeType": "application/x-subrip", "buffer": SRT.encode()}])
        page.click(f"{panel} button[type=submit]")
        page.wait_for_selector(f"{panel} .caption-list li[data-lang='de']")
        assert "converted from SRT" in page.inner_text(f"{panel} .caption-list li[data-lang='de']")
        assert "Deutsch" in page.inner_text("#toast-status") and page.inner_text("#toast-alert") == ""
        check_page(page, "captions-dashboard", (f"{panel} input[name=lang]", f"{panel} button[type=submit]"))
        page.click(f"{panel} .caption-list li[data-lang='de'] button.caption-delete")
        page.wait_for_selector(f"{panel} .caption-list li[data-lang='de']", state="detached")
        assert len(caption_objects(env, video)) == 1

        page.goto(f"{gw}/watch/{video}")
        page.keyboard.press("Space")
        watch_until(page, "document.getElementById('video').currentTime > 0.3")
        page.evaluate("document.getElementById('video').pause()")
        page.click("#ctl-captions")
        page.get_by_role("menuitemradio", name="English").click()
        watch_until(page, showing + f" === {CUE!r}")
        page.keyboard.press("c")            # the focus is back on the CC button, in the player
        watch_until(page, showing + " === ''")
        page.keyboard.press("c")
        watch_until(page, showing + f" === {CUE!r}")
        screenshots(page, "captions-watch")
    assert requests.delete(f"{gw}/api/videos/{video}", headers=owner["headers"]).status_code == 204
    assert caption_objects(env, video) == [] and h.video_objects(env, video) == []
    assert sql(mdb, "SELECT COUNT(*) AS n FROM video_captions WHERE video_id = %s", (video,), one=True)["n"] == 0
