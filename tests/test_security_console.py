"""The security console (issue #15 item 5) on the live stack through the gateway: both lists
paged and filtered by the server (event kind, user, time range, session state), bad filters
refused with a clear 400; the three actions (end a playback session, revoke a device, disable
a user) done by the services that own the data, effective at once for a real playback client,
audited with the admin as the actor, and refused (403, nothing changed) to anyone else,
CSRF included; then the page itself in real Chromium at desktop and phone sizes: filters,
paging, the detail drawer from the keyboard (focus in, Esc out) and every action from it."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.support.media import ONE_RUNG
from tests.support.browser import chromium_page
from tests.support.contract_client import ContractClient, ContractError
from tests.support.page_checks import asset_log, check_page, login, tab_to
from tests.support.playback import refused_until, viewer
from tests.support.videos import register_user, sql

CLIP_SECONDS = 4          # the shared ``clip`` fixture (tests/conftest.py): only played, never watched through
CLIP_SIZE = ONE_RUNG        # the shared ``clip`` fixture: one rung is all these tests need
HEADER = ("header .brand", "#logout-form button")


@pytest.fixture
def admin(gw, play):
    """A fresh admin login per test: access tokens live 5 minutes, this module takes longer."""
    pair = requests.post(f"{gw}/api/auth/login", timeout=10,
                         json={"username": "admin", "password": play["env"]["ADMIN_PASSWORD"]}).json()
    return {**pair["user"], "username": "admin", "password": play["env"]["ADMIN_PASSWORD"],
            "access_token": pair["access_token"]}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def console(gw, admin, which: str, **params) -> requests.Response:
    return requests.get(f"{gw}/api/admin/security/{which}", params=params, headers=bearer(admin["access_token"]),
                        timeout=10)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def events(mdb, kind: str, user_id: str) -> list[dict]:
    return sql(mdb, "SELECT kind, service, user_id, actor_id, detail FROM security_events WHERE kind = %s "
                    "AND user_id = %s", (kind, user_id))


# ---- lists: paging and filters ----------------------------------------------------------------
@pytest.fixture
def seeded(mdb, gw):
    """A fresh user with 30 events of a kind of its own (one a minute, newest 1 minute ago;
    every third one with the admin as actor) and 12 playback sessions of a video of its own
    (one every 10 minutes, the newest 3 still live); removed afterwards."""
    rng = random.Random(15)
    user = register_user(gw, "seed")
    kind = f"probe_{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    admin_id = sql(mdb, "SELECT id FROM users WHERE username = 'admin'", one=True)["id"]
    for i in range(30):
        sql(mdb, "INSERT INTO security_events (id, created_at, kind, service, user_id, actor_id, ip, path, detail) "
                 "VALUES (%s, %s, %s, 'test', %s, %s, '192.0.2.7', '/seeded', %s)",
            (uuid.uuid4().hex, now - timedelta(minutes=i + 1), kind, user["id"], admin_id if i % 3 == 0 else None,
             f"seeded event {i}"))
    vid = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Seeded sessions', '', 'public', 'ready')", (vid, user["id"]))
    sessions = []
    for i in range(12):
        sid = uuid.uuid4().hex
        started = now - timedelta(minutes=10 * i + 1)
        expires = now + timedelta(minutes=5) if i < 3 else started + timedelta(minutes=5)
        sql(mdb, "INSERT INTO playback_sessions (id, video_id, user_id, device_id, jkt, ip, user_agent, kek_enc, "
                 "cek_enc, epoch_started_at, codeword_length, tag_issued_at, started_at, expires_at) "
                 "VALUES (%s, %s, %s, NULL, %s, '198.51.100.9', %s, %s, %s, %s, 5, 0, %s, %s)",
            (sid, vid, user["id"], "j" * 43, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Safari/537.36", b"k" * 60, b"c" * 60, started, started, expires))
        sessions.append(sid)
    yield {"user": user, "kind": kind, "now": now, "sessions": sessions, "video": vid}
    sql(mdb, "DELETE FROM security_events WHERE kind = %s", (kind,))
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))      # its sessions go with it (cascade)


def test_events_are_paged_and_filtered_by_kind_user_and_time(gw, admin, seeded):
    kind, user, now = seeded["kind"], seeded["user"], seeded["now"]
    first = console(gw, admin, "events", kind=kind, per_page=10).json()
    assert (first["total"], first["pages"], first["page"]) == (30, 3, 1)
    assert [e["detail"] for e in first["items"]] == [f"seeded event {i}" for i in range(10)]    # newest first
    second = console(gw, admin, "events", kind=kind, per_page=10, page=2).json()
    assert [e["detail"] for e in second["items"]] == [f"seeded event {i}" for i in range(10, 20)]
    assert kind in first["kinds"]
    # The user: by username or id, as the subject or as the acting admin.
    by_name = console(gw, admin, "events", kind=kind, user=user["username"], per_page=100).json()
    assert by_name["total"] == 30 and by_name["items"][0]["username"] == user["username"]
    assert console(gw, admin, "events", kind=kind, user=user["id"]).json()["total"] == 30
    by_admin = console(gw, admin, "events", kind=kind, user="admin", per_page=100).json()
    assert by_admin["total"] == 10 and all(e["actor_username"] == "admin" for e in by_admin["items"])
    assert console(gw, admin, "events", kind=kind, user="nobody_" + uuid.uuid4().hex[:8]).json()["total"] == 0
    # Time range [since, until): events 5..14 minutes old, i.e. seeded events 4..13.
    window = console(gw, admin, "events", kind=kind, since=iso(now - timedelta(minutes=14)),
                     until=iso(now - timedelta(minutes=4, seconds=30)), per_page=100).json()
    assert [e["detail"] for e in window["items"]] == [f"seeded event {i}" for i in range(4, 14)]
    offset = console(gw, admin, "events", kind=kind, since=(now - timedelta(minutes=3)).strftime(
        "%Y-%m-%dT%H:%M:%S") + "+01:00").json()      # an offset: 1 h further back, so all 30
    assert offset["total"] == 30


def test_sessions_are_paged_and_filtered_by_user_state_and_time(gw, admin, seeded):
    user, now, sids = seeded["user"], seeded["now"], seeded["sessions"]
    page = console(gw, admin, "sessions", user=user["username"], per_page=5, page=2).json()
    assert (page["total"], page["pages"]) == (12, 3)
    assert [s["session_id"] for s in page["items"]] == sids[5:10]
    item = page["items"][0]
    assert item["device_agent"] == "Chrome 120 on Linux" and item["state"] == "expired"
    assert item["device_user_agent"].startswith("Mozilla/5.0")
    live = console(gw, admin, "sessions", user=user["id"], state="active").json()
    assert [s["session_id"] for s in live["items"]] == sids[:3] and all(s["active"] for s in live["items"])
    assert live["active"] >= 3
    ended = console(gw, admin, "sessions", user=user["id"], state="ended", per_page=100).json()
    assert [s["session_id"] for s in ended["items"]] == sids[3:]
    window = console(gw, admin, "sessions", user=user["id"], since=iso(now - timedelta(minutes=35)),
                     until=iso(now - timedelta(minutes=10))).json()
    assert [s["session_id"] for s in window["items"]] == sids[1:4]     # started 11, 21 and 31 minutes ago


@pytest.mark.parametrize("which, params", [
    ("events", {"since": "yesterday"}), ("events", {"since": "2026-13-40T00:00:00Z"}),
    ("events", {"until": "2026-01-01T00:00:00Z", "since": "2026-01-02T00:00:00Z"}),
    ("events", {"kind": "x' OR '1'='1"}), ("events", {"page": "0"}), ("events", {"per_page": "ten"}),
    ("events", {"page": "١"}), ("sessions", {"state": "zombie"}), ("sessions", {"user": "u" * 65}),
    ("sessions", {"since": "2026-01-01T00:00:00Z\n"}),
])
def test_bad_filters_are_a_clear_400(gw, admin, which, params):
    r = console(gw, admin, which, **params)
    assert r.status_code == 400 and r.json()["code"] == "invalid_input", r.text


def test_the_lists_are_for_admins_only(gw):
    user = register_user(gw, "nosy")
    for which in ("sessions", "events"):
        assert requests.get(f"{gw}/api/admin/security/{which}", timeout=10).status_code == 401
        r = requests.get(f"{gw}/api/admin/security/{which}", headers=bearer(user["access_token"]), timeout=10)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"


# ---- actions ----------------------------------------------------------------------------------
def playing(gw, vid, prefix):
    """A viewer with a real device and a live session whose keys flow."""
    user, c = viewer(gw, prefix)
    s = c.open_session(vid)
    assert c.request_keys(s, "video", 0, 2).status_code == 200
    return user, c, s


def session_row(mdb, sid):
    return sql(mdb, "SELECT ended_at, end_reason FROM playback_sessions WHERE id = %s", (sid,), one=True)


def attacks_refused(gw, admin, method: str, url: str, unchanged, body=None) -> None:
    """Everyone but an admin is refused (401/403, JSON) and ``unchanged()`` still holds after
    each try: no credentials, a viewer's bearer token, a viewer's device-bound token, and the
    admin's own cookie without the CSRF header."""
    _, other = viewer(gw, "attacker")
    for who, headers in [("anonymous", {}), ("viewer", bearer(other.access_token)),
                         ("viewer device", {"Authorization": f"DPoP {other.device_token}"}),
                         ("admin cookie without CSRF",
                          {"Cookie": f"sv_access={admin['access_token']}; sv_csrf=a1b2c3"})]:
        r = requests.request(method, url, json=body, headers=headers, timeout=10)
        assert r.status_code in (401, 403) and r.headers["Content-Type"].startswith("application/json"), \
            (who, r.status_code, r.text)
        assert unchanged(), who


def test_admin_ends_a_playback_session(gw, admin, delivery_video, mdb):
    vid, _ = delivery_video
    user, c, s = playing(gw, vid, "endme")
    url = f"{gw}/api/admin/sessions/{s.id}"
    attacks_refused(gw, admin, "DELETE", url, lambda: session_row(mdb, s.id)["ended_at"] is None)
    # The session's own user is no admin either.
    assert requests.delete(url, headers=bearer(c.access_token), timeout=10).status_code == 403
    assert c.request_keys(s, "video", 1, 1).status_code == 200                      # nothing changed
    # The admin, by cookie with the CSRF header (as the console sends it).
    r = requests.delete(url, timeout=10, headers={"Cookie": f"sv_access={admin['access_token']}; sv_csrf=a1b2c3",
                                                  "X-CSRF-Token": "a1b2c3"})
    assert r.status_code == 200 and r.json()["end_reason"] == "ended_by_admin", r.text
    assert session_row(mdb, s.id)["end_reason"] == "ended_by_admin"
    err = refused_until(lambda: c.request_keys(s, "video", 0, 2))        # the next key request
    assert (err.status, err.code) == (410, "session_ended")
    with pytest.raises(ContractError) as hb:
        c.heartbeat(s, 1.0)
    assert (hb.value.status, hb.value.code) == (410, "session_ended")
    [event] = events(mdb, "admin_session_ended", user["id"])
    assert event["actor_id"] == admin["id"] and s.id in event["detail"] and event["service"] == "streaming-svc"
    again = requests.delete(url, headers=bearer(admin["access_token"]), timeout=10)
    assert again.status_code == 409 and again.json()["code"] == "session_not_live"
    for bad in ("0" * 32, "nope", "x" * 300):
        r = requests.delete(f"{gw}/api/admin/sessions/{bad}", headers=bearer(admin["access_token"]), timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_admin_revokes_a_device(gw, admin, delivery_video, mdb):
    vid, _ = delivery_video
    user, c, s = playing(gw, vid, "revokeme")
    url = f"{gw}/api/admin/devices/{c.device_id}"
    attacks_refused(gw, admin, "DELETE", url, lambda: session_row(mdb, s.id)["ended_at"] is None and sql(
        mdb, "SELECT revoked_at FROM devices WHERE id = %s", (c.device_id,), one=True)["revoked_at"] is None)
    assert c.request_keys(s, "video", 1, 1).status_code == 200
    r = requests.delete(url, headers=bearer(admin["access_token"]), timeout=10)
    assert r.status_code == 200 and r.json()["revoked"] is True, r.text
    assert session_row(mdb, s.id)["end_reason"] == "device_revoked"
    err = refused_until(lambda: c.request_keys(s, "video", 0, 2))
    assert (err.status, err.code) == (403, "device_revoked")
    # The device's token (still within its 5 minutes) is refused at once everywhere it goes.
    with pytest.raises(ContractError) as opened:
        c.open_session(vid)
    assert (opened.value.status, opened.value.code) == (403, "device_revoked")
    with pytest.raises(ContractError) as hb:
        c.heartbeat(s, 1.0)
    assert (hb.value.status, hb.value.code) == (403, "device_revoked")
    renew = f"{gw}/api/auth/device-token"
    r = requests.post(renew, json={"fingerprint": {}}, timeout=10,
                      headers={"Authorization": f"DPoP {c.device_token}",
                               "DPoP": c.device.proof("POST", renew, c.device_token)})
    assert r.status_code == 403 and r.json()["code"] == "device_revoked"
    [event] = events(mdb, "admin_device_revoked", user["id"])
    assert event["actor_id"] == admin["id"] and c.device_id in event["detail"] and event["service"] == "auth-svc"
    # The account itself still works: a new device plays.
    fresh = ContractClient(gw).login(user["username"], user["password"])
    assert fresh.open_session(vid).id
    again = requests.delete(url, headers=bearer(admin["access_token"]), timeout=10)
    assert again.status_code == 409 and again.json()["code"] == "already_revoked"
    r = requests.delete(f"{gw}/api/admin/devices/{'0' * 32}", headers=bearer(admin["access_token"]), timeout=10)
    assert r.status_code == 404


def test_a_user_revoking_their_own_device_ends_its_sessions(gw, delivery_video, mdb):
    vid, _ = delivery_video
    user, c, s = playing(gw, vid, "selfrevoke")
    r = requests.delete(f"{gw}/api/devices/{c.device_id}", headers=bearer(c.access_token), timeout=10)
    assert r.status_code == 204
    assert session_row(mdb, s.id)["end_reason"] == "device_revoked"
    err = refused_until(lambda: c.request_keys(s, "video", 1, 1))
    assert (err.status, err.code) == (403, "device_revoked")
    assert len(events(mdb, "device_revoked", user["id"])) == 1
    assert requests.delete(f"{gw}/api/devices/{c.device_id}", headers=bearer(c.access_token),
                           timeout=10).status_code == 404


def test_admin_disables_a_user(gw, admin, delivery_video, mdb):
    vid, _ = delivery_video
    user, c, s = playing(gw, vid, "disableme")
    url = f"{gw}/api/admin/users/{user['id']}"
    attacks_refused(gw, admin, "PATCH", url, lambda: sql(mdb, "SELECT disabled FROM users WHERE id = %s",
                                                         (user["id"],), one=True)["disabled"] == 0, {"disabled": True})
    assert c.request_keys(s, "video", 1, 1).status_code == 200
    r = requests.patch(url, json={"disabled": True}, headers=bearer(admin["access_token"]), timeout=10)
    assert r.status_code == 200 and r.json()["disabled"] is True
    err = refused_until(lambda: c.request_keys(s, "video", 0, 2))
    assert (err.status, err.code) == (403, "account_disabled")
    login = requests.post(f"{gw}/api/auth/login", json={"username": user["username"], "password": user["password"]},
                          timeout=10)
    assert login.status_code == 403 and login.json()["code"] == "account_disabled"
    [event] = events(mdb, "admin_user_disabled", user["id"])
    assert event["actor_id"] == admin["id"] and event["service"] == "auth-svc"


# ---- the page ---------------------------------------------------------------------------------
def test_console_page_filters_drawer_and_actions(gw, admin, delivery_video, mdb):
    vid, _ = delivery_video
    one, c1, s1 = playing(gw, vid, "pageone")
    two, c2, s2 = playing(gw, vid, "pagetwo")
    # The play fixture's sessions live 8 s between heartbeats: these two stay live for the test.
    sql(mdb, "UPDATE playback_sessions SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 10 MINUTE WHERE id IN (%s, %s)",
        (s1.id, s2.id))
    assert requests.post(f"{gw}/api/auth/login", json={"username": one["username"], "password": "wrong guess"},
                         timeout=10).status_code == 401          # an event of theirs (login_failed)
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, admin, "/admin/security")
        page.wait_for_selector("#sessions tbody tr [data-open]")
        page.wait_for_selector("#events tbody tr [data-open]")
        check_page(page, "security-console", (*HEADER, "#session-filters input[name=user]",
                                              "#session-filters button[type=submit]", "#event-filters select",
                                              "#event-filters button[type=submit]", "#sessions tbody [data-open]",
                                              "#events tbody [data-open]"))
        assert page.is_disabled("#sessions-prev")          # the first page (the suite's other sessions may fill more)
        # Relative times with the exact time in a title; short user agents with the full one in a title.
        t = page.locator("#sessions tbody time").first
        assert t.inner_text().endswith("ago") or t.inner_text() == "just now"
        assert t.get_attribute("title").endswith(" UTC")
        widths = page.evaluate("() => [...document.querySelectorAll('table.console')].map(t => t.scrollWidth)")
        assert max(widths) <= 1280, widths
        # Filter by user from the keyboard: only that user's session.
        tab_to(page, "#session-filters input[name=user]")
        page.keyboard.type(one["username"])
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('#sessions tbody [data-open]').length === 1")
        assert s1.id in page.inner_text("#sessions tbody")
        assert page.is_disabled("#sessions-prev") and page.is_disabled("#sessions-next")   # one page
        # The drawer from the keyboard: focus moves in, Esc closes, focus comes back.
        tab_to(page, f"[data-open='sessions:{s1.id}']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#drawer[open]")
        assert page.evaluate("() => document.getElementById('drawer').contains(document.activeElement)")
        assert s1.id in page.inner_text("#drawer-facts")
        check_page(page, "security-drawer", ("#drawer-close", "#drawer-actions [data-action=endSession]"))
        page.keyboard.press("Escape")
        page.wait_for_selector("#drawer", state="hidden")
        assert page.evaluate(f"() => document.activeElement.dataset.open === 'sessions:{s1.id}'")
        # End the session from the drawer (keyboard), confirmed.
        page.keyboard.press("Enter")
        tab_to(page, "#drawer-actions [data-action=endSession]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#drawer-confirm:not([hidden])")
        assert page.evaluate("() => document.activeElement.id") == "confirm-yes"
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('drawer-status').textContent.includes('ended')")
        assert session_row(mdb, s1.id)["end_reason"] == "ended_by_admin"
        assert page.locator("#drawer-actions [data-action=endSession]").count() == 0
        # Revoke the device, then disable the user, from the same drawer (mouse this time).
        page.click("#drawer-actions [data-action=revokeDevice]")
        page.click("#confirm-yes")
        page.wait_for_function("() => document.getElementById('drawer-status').textContent.includes('revoked')")
        assert sql(mdb, "SELECT revoked_at FROM devices WHERE id = %s", (c1.device_id,), one=True)["revoked_at"]
        page.click("#drawer-actions [data-action=disableUser]")
        check_page(page, "security-drawer-confirm", ("#confirm-yes", "#confirm-no"))
        page.click("#confirm-yes")
        page.wait_for_function("() => document.getElementById('drawer-status').textContent.includes('disabled')")
        assert sql(mdb, "SELECT disabled FROM users WHERE id = %s", (one["id"],), one=True)["disabled"] == 1
        page.click("#drawer-close")
        # The other viewer's session is untouched; the audit trail is filterable by kind.
        assert session_row(mdb, s2.id)["ended_at"] is None
        assert c2.request_keys(s2, "video", 1, 1).status_code == 200
        page.select_option("#event-filters select[name=kind]", "admin_user_disabled")
        page.fill("#event-filters input[name=user]", one["username"])
        page.click("#event-filters button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('#events tbody [data-open]').length === 1")
        page.click("#events tbody [data-open]")
        page.wait_for_selector("#drawer[open]")
        facts = page.inner_text("#drawer-facts")
        assert "By admin" in facts and one["username"] in facts
        page.keyboard.press("Escape")
        check_page(page, "security-console-filtered", ("#event-filters button[type=submit]",))
        assert not failed, failed


def test_console_pages_through_the_events(gw, admin, seeded):
    with chromium_page() as page:
        login(page, gw, admin, "/admin/security")
        page.select_option("#event-filters select[name=kind]", seeded["kind"])
        page.click("#event-filters button[type=submit]")
        page.wait_for_function("() => document.getElementById('events-page').textContent.includes('30 events')")
        assert page.locator("#events tbody [data-open]").count() == 25 and page.is_disabled("#events-prev")
        page.click("#events-next")
        page.wait_for_function("() => document.getElementById('events-page').textContent.startsWith('Page 2 of 2')")
        assert page.locator("#events tbody [data-open]").count() == 5 and page.is_disabled("#events-next")
        assert "seeded event 29" in page.inner_text("#events tbody")
        # On the narrowest phone Previous and Next stay side by side (the page count above them).
        page.set_viewport_size({"width": 360, "height": 740})
        prev, nxt = (page.locator(f"#events-{b}").bounding_box() for b in ("prev", "next"))
        assert prev["y"] == nxt["y"] and prev["x"] < nxt["x"], (prev, nxt)
