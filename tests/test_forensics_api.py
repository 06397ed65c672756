"""Forensics through the real stack: sessions opened and a leaker's stream assembled with
the contract client (real playback API), the suspect submitted to POST /api/forensics/detect
through the gateway, the detection run by the real worker code, the result, report and
session record read back; admin-only access; the admin pages in real Chromium."""
from __future__ import annotations

import random
import subprocess
import threading
import uuid

import pytest
import requests

from svcommon.jobqueue import DETECTION_RUN
from tests.support.browser import chromium_page, screenshots
from tests.support.contract_client import ContractClient
from tests.support.media import make_texture_clip
from tests.support.page_checks import check_page
from tests.support.videos import make_ready_video, register_user

pytestmark = pytest.mark.heavy
SESSIONS = 50


def _admin(live_stack):
    r = requests.post(f"{live_stack['url']}/api/auth/login",
                      json={"username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def traced(live_stack, worker_app, stores, service_config, owner_id, tmp_path_factory):
    import mysql.connector
    d = tmp_path_factory.mktemp("forensics-live")
    conn = mysql.connector.connect(host="127.0.0.1", port=service_config["DB_PORT"], user="streamvault",
                                   password=service_config["DB_PASSWORD"], database="streamvault", autocommit=True)
    # Content of its own: traced without naming the video, among the shared stack's others.
    clip = make_texture_clip(d / "clip.mp4", seed=4101, seconds=64).read_bytes()
    vid = make_ready_video(worker_app, conn, stores, owner_id, clip, title="Forensics clip")
    gw = live_stack["url"]
    sessions, leaker = [], None
    for u in range(5):                                    # 5 viewers x 10 sessions (3 live max)
        user = register_user(gw, "viewer")
        client = ContractClient(gw).login(user["username"], user["password"])
        for k in range(SESSIONS // 5):
            s = client.open_session(vid)
            sessions.append(s.id)
            if u == 2 and k == 4:
                leaker = (s.id, user, client.device_id)
                client.download(s, "270p", d / "stream.mp4")
            client.end(s)
    conn.close()
    leak = d / "leak.mp4"
    # Re-encoded from the start (the API path is under test here; cuts at arbitrary offsets are
    # watermark-svc's trace tests and bench/forensics): the tag is gone, only the watermark names the session.
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(d / "stream.mp4"),
                    "-t", "58", "-vf", "scale=-2:240", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                    str(leak)], check=True)
    return {"video_id": vid, "sessions": sessions, "leaker": leaker, "stream": d / "stream.mp4", "leak": leak,
            "admin": _admin(live_stack), "gw": gw}


def _submit(gw, token, path, **form):
    with open(path, "rb") as fh:
        return requests.post(f"{gw}/api/forensics/detect", files={"file": (path.name, fh, "video/mp4")},
                             data=form, headers={"Authorization": f"Bearer {token}"})


def _run_worker(worker_app, stores):
    from watermark_svc.jobs import run_once
    assert run_once(worker_app, "test-detector-" + uuid.uuid4().hex[:6], kinds=[DETECTION_RUN])


def _status(gw, token, job_id):
    r = requests.get(f"{gw}/api/forensics/detect/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("which, method", [("stream", "metadata"), ("leak", "watermark")])
def test_detection_names_the_leaking_session(traced, worker_app, stores, which, method):
    gw, token = traced["gw"], traced["admin"]
    r = _submit(gw, token, traced[which])
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    assert _status(gw, token, job)["status"] == "queued"
    _run_worker(worker_app, stores)
    body = _status(gw, token, job)
    assert body["status"] == "done", body
    res = body["result"]
    sid, user, device_id = traced["leaker"]
    assert res["method"] == method and res["video_id"] == traced["video_id"], res
    assert res["match"]["session_id"] == sid and res["match"]["user"]["username"] == user["username"]
    assert res["match"]["device_id"] == device_id and res["match"]["ip"] and res["match"]["started_at"]
    assert res["false_accusation_probability"] <= 1e-6
    if method == "watermark":
        assert res["segments_read"] >= 28
    report = requests.get(gw + res["report_url"], headers={"Authorization": f"Bearer {token}"})
    assert report.status_code == 200 and sid in report.text and user["username"] in report.text
    full = requests.get(f"{gw}/api/forensics/detect/{job}/report.json",
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert full["evidence"]["match"]["device"]["fingerprint"]["user_agent"]
    if method == "watermark":
        assert full["evidence"]["robust"]["sessions_tested"] == SESSIONS
        # The alignment's significance is in the printed report (its size is not this
        # test's business: a strong correlation alone makes a video a candidate).
        sigma = full["evidence"]["robust"]["significance"]
        assert sigma > 0 and f"{sigma} robust σ above every other offset" in report.text
    listed = requests.get(f"{gw}/api/forensics/detections", headers={"Authorization": f"Bearer {token}"}).json()
    assert job in [d["job_id"] for d in listed["items"]]


def _open_forensics_page(page, gw, live_stack):
    """The trace-a-leak page, signed in as the admin through its login form."""
    page.goto(f"{gw}/admin/forensics")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", live_stack["env"]["ADMIN_PASSWORD"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{gw}/admin/forensics")


def _open_report(page, gw, live_stack, listed: str, report_url: str):
    """The detection listed (its verdict cell saying `listed`) on the trace page, then its report."""
    _open_forensics_page(page, gw, live_stack)
    page.wait_for_selector(f"#detections td:has-text('{listed}')")
    page.goto(gw + report_url)


@pytest.mark.browser
def test_short_leak_is_inconclusive_in_plain_words(traced, live_stack, worker_app, stores):
    """24 s of the leaker's stream (12 segments, each read right) cannot reach 1e-6 among 50
    sessions: the verdict is 'inconclusive', naming the leaker only as the best candidate so
    far, with N of M segments and how much more footage would decide, in the API and on the
    printable report (Chromium)."""
    gw, token = traced["gw"], traced["admin"]
    short = traced["leak"].with_name("short-leak.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "8", "-i", str(traced["stream"]),
                    "-t", "24", "-vf", "scale=-2:240", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                    str(short)], check=True)
    r = _submit(gw, token, short)
    assert r.status_code == 202, r.text
    _run_worker(worker_app, stores)
    res = _status(gw, token, r.json()["job_id"])["result"]
    assert res["verdict"] == "inconclusive" and res["match"] is None and res["method"] == "watermark", res
    inc, sid = res["inconclusive"], traced["leaker"][0]
    assert inc["segments_agreeing"] == inc["segments_read"] == res["segments_read"] >= 11
    # Session ids are random here: another session can share all 12 bits (~1 %); it then ties.
    assert inc["best_candidate"]["session_id"] == sid or inc["tied_with"] > 0
    assert inc["false_accusation_probability"] > 1e-6 and inc["more_segments_needed"] > 0
    assert inc["more_seconds_needed"] == pytest.approx(2 * inc["more_segments_needed"])
    assert res["ambiguity"] is None, res["ambiguity"]         # no other video shares its content
    assert res["video_id"] == traced["video_id"]
    assert res["false_accusation_probability"] == inc["false_accusation_probability"]
    with chromium_page() as page:
        _open_report(page, gw, live_stack, "inconclusive", res["report_url"])
        assert page.text_content("#verdict") == "Inconclusive"
        words = " ".join(page.text_content("#inconclusive").split())
        assert "Best candidate so far (not an accusation)" in words and inc["best_candidate"]["session_id"] in words
        assert f"{inc['segments_agreeing']} of {inc['segments_read']} segments read agree" in words
        assert f"about {inc['more_segments_needed']} more segments ({inc['more_seconds_needed']} s)" in words
        assert "no one is accused" in words and "Match" not in page.text_content("main")
        check_page(page, "forensics-inconclusive")


def test_session_record_gives_the_codeword(traced):
    gw, token = traced["gw"], traced["admin"]
    sid = traced["sessions"][0]
    r = requests.get(f"{gw}/api/forensics/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    assert len(body["payload"]) == body["codeword_length"] >= 32 and set(body["payload"]) <= {"A", "B"}


@pytest.mark.parametrize("who, expected", [("nobody", 401), ("viewer", 403)])
def test_forensics_is_admin_only(traced, live_stack, who, expected):
    gw = traced["gw"]
    headers = {}
    if who == "viewer":
        headers = {"Authorization": f"Bearer {register_user(gw, 'nosy')['access_token']}"}
    r = requests.post(f"{gw}/api/forensics/detect", files={"file": ("x.mp4", b"x")}, headers=headers)
    assert r.status_code == expected and r.json()["code"]
    assert requests.get(f"{gw}/api/forensics/detections", headers=headers).status_code == expected
    assert requests.get(f"{gw}/api/forensics/sessions/{traced['sessions'][0]}", headers=headers).status_code == expected


def test_bad_submissions_are_refused_cleanly(traced, stores):
    gw, token = traced["gw"], traced["admin"]
    h = {"Authorization": f"Bearer {token}"}
    assert requests.post(f"{gw}/api/forensics/detect", headers=h, data={"x": "1"}).json()["code"] == "invalid_input"
    r = requests.post(f"{gw}/api/forensics/detect", headers=h, files={"file": ("a.mp4", b"abc")},
                      data={"video_id": "0" * 32})
    assert r.status_code == 404
    before = {o["key"] for o in stores["watermark"].list("forensics/detections/")}
    assert requests.get(f"{gw}/api/forensics/detect/{'f' * 32}", headers=h).status_code == 404
    assert {o["key"] for o in stores["watermark"].list("forensics/detections/")} == before


@pytest.mark.browser
def test_admin_pages_in_chromium(traced, live_stack, worker_app, stores):
    gw = traced["gw"]
    stop = threading.Event()

    def worker():
        from watermark_svc.jobs import run_once
        while not stop.is_set():
            if not run_once(worker_app, "browser-detector", kinds=[DETECTION_RUN]):
                stop.wait(0.5)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    requests.get(f"{gw}/api/forensics/detections", headers={"Authorization": "Bearer forged"})  # an event
    try:
        with chromium_page() as page:
            _open_forensics_page(page, gw, live_stack)
            page.set_input_files("#file", str(traced["stream"]))
            page.click("#submit")
            page.wait_for_selector("#result:not([hidden])", timeout=120_000)
            assert page.text_content("#verdict") == "Match found"
            assert traced["leaker"][0] in page.text_content("#facts")
            assert page.get_attribute("#upload-progress", "value") == "100"
            screenshots(page, "forensics")
            page.click("#report-link")
            page.wait_for_selector("h1:has-text('Forensic evidence report')")
            screenshots(page, "forensics-report")
            assert traced["leaker"][1]["username"] in page.text_content("main")
            # Security console (served by watermark-svc), through the gateway like an admin.
            page.goto(f"{gw}/admin/security")
            page.wait_for_selector("#sessions tbody tr")
            text = page.text_content("#sessions")
            assert traced["sessions"][-1] in text
            page.wait_for_selector("#events tbody tr")
            screenshots(page, "security-console")
            # The 5-minute access cookie expires (the browser drops it): the console refreshes the
            # cookies through svclient.js and keeps updating instead of going silent.
            page.context.clear_cookies(name="sv_access")
            marker = uuid.UUID(int=random.Random(9).getrandbits(128)).hex
            assert requests.get(f"{gw}/api/forensics/detect/{marker}",
                                headers={"Authorization": "Bearer forged"}).status_code == 401
            page.wait_for_selector(f"#events td:has-text('{marker}')", timeout=20_000)
            assert "sv_access" in {c["name"] for c in page.context.cookies()}
            assert page.url == f"{gw}/admin/security"
    finally:
        stop.set()
        t.join(10)


def _payload(gw, token, sid) -> str:
    r = requests.get(f"{gw}/api/forensics/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()["payload"]


@pytest.mark.browser
def test_colluders_are_both_named_in_plain_words(traced, live_stack, worker_app, stores, monkeypatch):
    """Two viewers average their streams frame by frame: the watermark cancels where their
    variants differ and names both where they agree. A partner whose codeword agrees with the
    leaker's on 20+ of the first 29 segments is opened through the API (sessions are random
    here); at a 1e-3 threshold (the operator's setting; at 1e-6 among 1000 sessions both were
    named from 180 s of averaged footage, bench/results/forensics-collusion.md) both are decisive: one match with a second session
    accused, said in words in the API and on the printable report, and no one else."""
    gw, token = traced["gw"], traced["admin"]
    leaker = traced["leaker"][0]
    mine = _payload(gw, token, leaker)[:29]
    partner = register_user(gw, "viewer")
    client = ContractClient(gw).login(partner["username"], partner["password"])
    # P(>= 20 of 29 random bits agree) = 3.1 %: ~33 tries expected, and 400 fail with
    # probability 4e-6 (60 tries fail 15 % of runs; CI hit it).
    for _ in range(400):
        s = client.open_session(traced["video_id"])
        if sum(x == y for x, y in zip(mine, _payload(gw, token, s.id)[:29])) >= 20:
            break
        client.end(s)
    else:
        pytest.fail("no partner session agreeing on 20 of 29 segments in 400 tries")
    d = traced["stream"].parent
    client.download(s, "270p", d / "partner.mp4")
    client.end(s)
    averaged = d / "averaged.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(traced["stream"]), "-i", str(d / "partner.mp4"),
                    "-filter_complex", "[0:v][1:v]mix=inputs=2:duration=shortest,scale=-2:240[v]", "-map", "[v]",
                    "-t", "58", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(averaged)], check=True)
    monkeypatch.setitem(worker_app.config, "FORENSICS_MAX_FALSE_ACCUSATION", 1e-3)
    r = _submit(gw, token, averaged)
    assert r.status_code == 202, r.text
    _run_worker(worker_app, stores)
    res = _status(gw, token, r.json()["job_id"])["result"]
    assert res["verdict"] == "match" and res["method"] == "watermark", res
    assert {res["match"]["session_id"], *res["also_accused"]} == {leaker, s.id}, res["conclusion"]
    assert "2 sessions accused: several sessions contributed" in res["conclusion"]
    with chromium_page() as page:
        _open_report(page, gw, live_stack, "a collusion", res["report_url"])
        assert page.text_content("#verdict") == "Match: 2 sessions (several sessions contributed)"
        words = " ".join(page.text_content("#collusion").split())
        assert "Several sessions contributed to this copy" in words and "at most 0.001" in words
        other = " ".join(page.text_content("#also-accused").split())
        assert res["also_accused"][0] in other
        who = traced["leaker"][1] if res["also_accused"][0] == leaker else partner
        assert f"account {who['username']}" in other
        check_page(page, "forensics-collusion-report")
