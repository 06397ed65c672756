"""Security regressions of issue #11 (tokens, device binding, CSRF, cookies, page headers),
driven through the nginx gateway against every real service."""
from __future__ import annotations

import math
import time
import uuid

import pytest
import requests

from tests import ingest_helpers as h
from tests.support.dpop import FINGERPRINT, DeviceKey


@pytest.fixture
def gw(live_stack):
    return live_stack["url"]


def _account(gw: str) -> dict:
    name = "sa_" + uuid.uuid4().hex[:10]
    pw = "security test password"
    r = requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@e.test", "password": pw})
    assert r.status_code == 201, r.text
    r = requests.post(f"{gw}/api/auth/login", json={"username": name, "password": pw})
    assert r.status_code == 200, r.text
    return {**r.json(), "username": name, "password": pw, "id": r.json()["user"]["id"]}


def _device_token(gw: str, bearer: str, key: DeviceKey) -> dict:
    url = f"{gw}/api/auth/device-token"
    r = requests.post(url, json={"fingerprint": FINGERPRINT},
                      headers={"Authorization": f"Bearer {bearer}", "DPoP": key.proof("POST", url)})
    assert r.status_code == 200, r.text
    return r.json()


def _cookie_session(gw: str, username: str, password: str) -> tuple[requests.Session, str]:
    """A browser-like session: the login form, its CSRF cookie, the session cookies."""
    s = requests.Session()
    assert s.get(f"{gw}/auth/login").status_code == 200
    csrf = s.cookies["sv_csrf"]
    r = s.post(f"{gw}/auth/login", data={"username": username, "password": password, "csrf_token": csrf,
                                         "redirect": "/"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s, s.cookies["sv_csrf"]


def _events(live_stack, user_id: str, kind: str) -> list[dict]:
    return h.db_rows(live_stack["env"], "SELECT kind, detail FROM security_events WHERE user_id = %s AND kind = %s",
                     (user_id, kind))


# ---- item 1: a device-bound token is useless without a proof from its key -----------------------
@pytest.mark.parametrize("path", ["/api/auth/profile", "/api/devices", "/api/library", "/api/videos/mine"])
def test_device_token_in_the_cookie_is_refused(gw, live_stack, path):
    acct = _account(gw)
    stolen = _device_token(gw, acct["access_token"], DeviceKey())["access_token"]
    r = requests.get(f"{gw}{path}", cookies={"sv_access": stolen})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_dpop_proof"
    assert _events(live_stack, acct["id"], "bad_proof")


def test_device_token_in_the_cookie_opens_no_page(gw):
    acct = _account(gw)
    stolen = _device_token(gw, acct["access_token"], DeviceKey())["access_token"]
    r = requests.get(f"{gw}/", cookies={"sv_access": stolen}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/auth/login")


def test_stolen_device_token_cannot_get_a_token_for_another_key(gw, live_stack):
    victim = _account(gw)
    stolen = _device_token(gw, victim["access_token"], DeviceKey())["access_token"]
    attacker = DeviceKey()
    url = f"{gw}/api/auth/device-token"
    attempts = {
        "cookie": dict(cookies={"sv_access": stolen, "sv_csrf": "c" * 20},
                       headers={"X-CSRF-Token": "c" * 20, "DPoP": attacker.proof("POST", url)}),
        "cookie_with_ath": dict(cookies={"sv_access": stolen, "sv_csrf": "c" * 20},
                                headers={"X-CSRF-Token": "c" * 20, "DPoP": attacker.proof("POST", url, stolen)}),
        "dpop": dict(headers={"Authorization": f"DPoP {stolen}", "DPoP": attacker.proof("POST", url, stolen)}),
        "bearer": dict(headers={"Authorization": f"Bearer {stolen}", "DPoP": attacker.proof("POST", url)}),
    }
    for name, kw in attempts.items():
        r = requests.post(url, json={"fingerprint": FINGERPRINT}, **kw)
        assert r.status_code == 401, (name, r.text)
    from svcommon.dpop import jwk_thumbprint
    assert not h.db_rows(live_stack["env"], "SELECT id FROM devices WHERE jkt = %s", (jwk_thumbprint(attacker.jwk),))


# ---- item 10: a device token renews itself (same key), one proof verification per request -------
def test_device_token_renews_itself_without_a_false_replay(gw, live_stack):
    acct = _account(gw)
    key = DeviceKey()
    first = _device_token(gw, acct["access_token"], key)
    url = f"{gw}/api/auth/device-token"
    r = requests.post(url, json={"fingerprint": FINGERPRINT},
                      headers={"Authorization": f"DPoP {first['access_token']}",
                               "DPoP": key.proof("POST", url, first["access_token"])})
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["device_id"] == first["device_id"] and renewed["token_type"] == "DPoP"
    prof = f"{gw}/api/auth/profile"
    ok = requests.get(prof, headers={"Authorization": f"DPoP {renewed['access_token']}",
                                     "DPoP": key.proof("GET", prof, renewed["access_token"])})
    assert ok.status_code == 200
    assert not _events(live_stack, acct["id"], "dpop_replay")


# ---- item 6: the proof's iat window is symmetric ----------------------------------------------------
def _profile_with_iat(gw: str, skew: int) -> requests.Response:
    acct = _account(gw)
    key = DeviceKey()
    token = _device_token(gw, acct["access_token"], key)["access_token"]
    # Integer iat rounded so the real skew is never nearer the window's edge than asked.
    inside = abs(skew) < 60
    iat = (math.floor if (skew > 0) == inside else math.ceil)(time.time()) + skew
    prof = f"{gw}/api/auth/profile"
    return requests.get(prof, headers={"Authorization": f"DPoP {token}",
                                       "DPoP": key.proof("GET", prof, token, iat=iat)})


@pytest.mark.parametrize("skew", [1, 59])
def test_proof_from_a_clock_ahead_within_the_window_is_accepted(gw, skew):
    r = _profile_with_iat(gw, skew)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("skew", [61, -61])
def test_proof_outside_the_window_is_refused(gw, skew):
    r = _profile_with_iat(gw, skew)
    assert r.status_code == 401 and r.json()["code"] == "invalid_dpop_proof"


# ---- item 9: CSRF is checked without consuming an upload's body -------------------------------------
def test_cookie_multipart_upload_with_csrf_header_and_field(gw, live_stack, tmp_path):
    user = h.new_user(gw)
    s, csrf = _cookie_session(gw, user["username"], user["password"])
    clip = h.make_video(tmp_path / "clip.mp4", seconds=1)
    with open(clip, "rb") as f:
        r = s.post(f"{gw}/api/videos", headers={"X-CSRF-Token": csrf}, files={"file": ("clip.mp4", f)},
                   data={"csrf_token": csrf, "title": "csrf field", "visibility": "private"}, timeout=60)
    assert r.status_code == 201, r.text
    vid = r.json()["video"]["id"]
    head = h.s3_client(live_stack["env"]).head_object(Bucket=live_stack["env"]["S3_BUCKET"],
                                                      Key=f"originals/{vid}/original")
    assert head["ContentLength"] == clip.stat().st_size


def test_cookie_multipart_upload_with_only_the_csrf_field_is_refused_cleanly(gw, live_stack, tmp_path):
    user = h.new_user(gw)
    s, csrf = _cookie_session(gw, user["username"], user["password"])
    clip = h.make_video(tmp_path / "clip.mp4", seconds=1)
    with open(clip, "rb") as f:
        r = s.post(f"{gw}/api/videos", files={"file": ("clip.mp4", f)},
                   data={"csrf_token": csrf, "title": "field only"}, timeout=60)
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed", r.text
    assert h.user_footprint(live_stack["env"], user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}


# ---- item 11: cookie refresh keeps the tokens in HttpOnly cookies ------------------------------------
def test_cookie_refresh_does_not_return_tokens_in_the_body(gw):
    acct = _account(gw)
    s, csrf = _cookie_session(gw, acct["username"], acct["password"])
    old = s.cookies["sv_refresh"]
    r = s.post(f"{gw}/api/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and "access_token" not in body
    assert s.cookies["sv_refresh"] != old and body["user"]["username"] == acct["username"]
    # The API-body refresh still returns the pair.
    pair = requests.post(f"{gw}/api/auth/refresh", json={"refresh_token": acct["refresh_token"]}).json()
    assert pair["refresh_token"] and pair["access_token"]


# ---- item 13: no page may be framed; pages get a CSP ---------------------------------------------------
@pytest.mark.parametrize("path", ["/auth/login", "/auth/signup", "/auth/no-such-page", "/", "/upload/",
                                  "/admin/forensics"])
def test_html_responses_forbid_framing(gw, path):
    r = requests.get(f"{gw}{path}", allow_redirects=False, headers={"Accept": "text/html"})
    assert r.headers["Content-Type"].startswith("text/html"), (path, r.status_code)
    csp = r.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, (path, csp)
    assert r.headers.get("X-Frame-Options") == "DENY", path


def test_login_page_csp_allows_only_its_own_assets(gw):
    r = requests.get(f"{gw}/auth/login")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "form-action 'self'" in csp and "object-src 'none'" in csp
