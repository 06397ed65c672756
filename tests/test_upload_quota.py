"""Per-user upload quotas on the real stack, through the gateway: an admin sets a user's quota
(API and the users page, in real Chromium), upload-svc enforces it at once on tus creation
(Upload-Length), on a streamed POST of unannounced length (chunked) and on concurrent
uploads that only together cross it, with a clear 413 and nothing left behind; the user sees
their usage and the refusal on the upload page."""
from __future__ import annotations

import threading

import pytest
import requests

from tests import ingest_helpers as h
from tests.support.browser import chromium_page
from tests.support.page_checks import asset_log, check_page, login

MiB = 1024 * 1024
HEADER = ("header .brand", "#logout-form button")


def _set_quota(gw, headers, user_id, value):
    return requests.patch(f"{gw}/api/admin/users/{user_id}", json={"upload_quota_bytes": value}, headers=headers,
                          timeout=10)


def _tus_create(gw, user, length, name="clip.mp4"):
    return requests.post(f"{gw}/api/uploads", timeout=30, headers={
        **h.TUS, **user["headers"], "Upload-Length": str(length), "Upload-Metadata": h.tus_metadata(filename=name)})


def _terminate(gw, user, resp):
    assert requests.delete(gw + resp.headers["Location"], headers={**h.TUS, **user["headers"]},
                           timeout=30).status_code == 204


def _usage(gw, user):
    r = requests.get(f"{gw}/api/videos/usage", headers=user["headers"], timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _stored(env):
    """Every original object and unfinished multipart upload in the store (the 'nothing left'
    check for refusals whose video id is never revealed)."""
    try:
        return set(h.s3_keys(env, "originals/")) | set(h.s3_pending_multipart(env, "originals/"))
    except h.s3_client(env).exceptions.NoSuchBucket:      # a fresh stack: file-svc makes it on first use
        return set()


def _chunked_post(gw, user, data: bytes, name="clip.mp4", piece=256 * 1024):
    """A streamed multipart POST without Content-Length (Transfer-Encoding: chunked)."""
    boundary = "quotaboundary"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
               "Content-Type: video/mp4\r\n\r\n").encode()
        for i in range(0, len(data), piece):
            yield data[i:i + piece]
        yield f"\r\n--{boundary}--\r\n".encode()
    return requests.post(f"{gw}/api/videos", data=body(), timeout=120, headers={
        **user["headers"], "Content-Type": f"multipart/form-data; boundary={boundary}"})


def _together(*calls):
    """Run the calls at the same moment (a barrier), return their results in order."""
    barrier, out = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        out[i] = call()
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


def test_admin_sets_quotas_through_the_api(live_stack, admin_headers):
    gw = live_stack["url"]
    user = h.new_user(gw, "qapi")
    default = _usage(gw, user)
    assert default == {"used_bytes": 0, "quota_bytes": 50 * 1024 ** 3, "available_bytes": 50 * 1024 ** 3}
    r = _set_quota(gw, admin_headers, user["id"], 10 * MiB)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["upload_quota_bytes"] == 10 * MiB and body["upload_quota_in_force"] == 10 * MiB
    assert body["used_bytes"] == 0
    assert _usage(gw, user)["quota_bytes"] == 10 * MiB                       # at once, no new login
    listed = requests.get(f"{gw}/api/admin/users", params={"q": user["username"]}, headers=admin_headers, timeout=10).json()
    assert listed["items"][0]["upload_quota_bytes"] == 10 * MiB
    assert _set_quota(gw, admin_headers, user["id"], 0).json()["upload_quota_in_force"] is None       # 0 = unlimited
    assert _usage(gw, user)["quota_bytes"] is None
    assert _set_quota(gw, admin_headers, user["id"], None).json()["upload_quota_in_force"] == 50 * 1024 ** 3  # default
    for bad in (-1, "10", True, 1.5, 2 ** 62):
        r = _set_quota(gw, admin_headers, user["id"], bad)
        assert r.status_code == 400 and r.json()["code"] == "invalid_input", (bad, r.text)
    # Only admins; and the change is audited.
    r = _set_quota(gw, user["headers"], user["id"], 0)
    assert r.status_code == 403
    events = h.db_rows(live_stack["env"], "SELECT detail FROM security_events WHERE kind = 'admin_user_updated' "
                                          "AND user_id = %s", (user["id"],))
    assert any("upload_quota=10485760" in e["detail"] for e in events)
    assert any("upload_quota=default" in e["detail"] for e in events)
    # Admins are never limited.
    assert _usage(gw, {"headers": admin_headers})["quota_bytes"] is None


def test_tus_uploads_reserve_their_length(live_stack, admin_headers):
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "qtus")
    assert _set_quota(gw, admin_headers, user["id"], 10 * MiB).status_code == 200
    before = _stored(env)
    over = _tus_create(gw, user, 10 * MiB + 1)
    assert over.status_code == 413 and over.json()["code"] == "quota_exceeded", over.text
    assert "0 B of 10 MiB used" in over.json()["error"]
    first = _tus_create(gw, user, 6 * MiB)
    assert first.status_code == 201, first.text
    assert _usage(gw, user) == {"used_bytes": 6 * MiB, "quota_bytes": 10 * MiB, "available_bytes": 4 * MiB}
    # The upload in progress holds its whole length: a second one that would cross is refused.
    second = _tus_create(gw, user, 6 * MiB)
    assert second.status_code == 413 and second.json()["code"] == "quota_exceeded"
    assert "6 MiB of 10 MiB used" in second.json()["error"]
    assert h.user_footprint(env, user["id"])["videos"] == 1
    _terminate(gw, user, first)                                              # cancelling frees it
    assert _usage(gw, user)["used_bytes"] == 0
    again = _tus_create(gw, user, 6 * MiB)
    assert again.status_code == 201
    _terminate(gw, user, again)
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    assert not _stored(env) - before            # nothing new (a sweep may remove others')


def test_concurrent_tus_uploads_that_together_cross_the_quota(live_stack, admin_headers):
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "qpair")
    assert _set_quota(gw, admin_headers, user["id"], 10 * MiB).status_code == 200
    before = _stored(env)
    for _ in range(3):
        a, b = _together(lambda: _tus_create(gw, user, 6 * MiB, "a.mp4"), lambda: _tus_create(gw, user, 6 * MiB, "b.mp4"))
        assert sorted([a.status_code, b.status_code]) == [201, 413], (a.text, b.text)
        loser = a if a.status_code == 413 else b
        assert loser.json()["code"] == "quota_exceeded"
        assert h.user_footprint(env, user["id"])["uploads"] == 1
        _terminate(gw, user, a if a.status_code == 201 else b)
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    assert not _stored(env) - before            # nothing new (a sweep may remove others')


def test_streamed_posts_are_counted_as_they_arrive(live_stack, admin_headers, tmp_path):
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "qpost")
    clip = h.make_video(tmp_path / "clip.mp4", seconds=2).read_bytes()
    # One unannounced body larger than the quota: stopped with 413, nothing kept.
    assert _set_quota(gw, admin_headers, user["id"], 1 * MiB).status_code == 200
    before = _stored(env)
    r = _chunked_post(gw, user, h.MP4_HEAD + b"\0" * (3 * MiB))
    assert r.status_code == 413 and r.json()["code"] == "quota_exceeded", r.text
    assert "of 1 MiB used" in r.json()["error"]
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
    assert not _stored(env) - before            # nothing new (a sweep may remove others')
    # Two real videos streamed at once, each within the quota, together over it: the first
    # to finish reserves its size under the owner's lock, the other is refused.
    assert _set_quota(gw, admin_headers, user["id"], len(clip) * 3 // 2).status_code == 200
    a, b = _together(lambda: _chunked_post(gw, user, clip, "a.mp4"), lambda: _chunked_post(gw, user, clip, "b.mp4"))
    assert sorted([a.status_code, b.status_code]) == [201, 413], (a.text, b.text)
    winner, loser = (a, b) if a.status_code == 201 else (b, a)
    assert loser.json()["code"] == "quota_exceeded"
    assert winner.json()["video"]["size"] == len(clip)
    assert h.user_footprint(env, user["id"])["videos"] == 1
    assert _usage(gw, user)["used_bytes"] == len(clip)
    vid = winner.json()["video"]["id"]
    assert requests.delete(f"{gw}/api/videos/{vid}", headers=user["headers"], timeout=30).status_code == 204
    assert not _stored(env) - before            # nothing new (a sweep may remove others')


@pytest.mark.browser
def test_quota_on_the_users_page_and_the_upload_page(live_stack, admin_account, tmp_path):
    gw, env = live_stack["url"], live_stack["env"]
    user = h.new_user(gw, "qpage")
    row = f"[data-user='{user['username']}']"
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, admin_account, f"/admin/users?q={user['username']}")
        assert "of 50 GiB (default quota)" in page.inner_text(f"{row} .usage")
        check_page(page, "admin-users-quota", (*HEADER, f"{row} input.quota", f"{row} button[aria-label^='Set quota']",
                                               "#admin-nav a[href='/admin/']"))
        page.fill(f"{row} input.quota", "lots")                                  # refused with the reason
        page.press(f"{row} input.quota", "Enter")
        page.wait_for_selector("#form-errors")
        assert "Upload quota: write a size such as" in page.inner_text("#form-errors")
        check_page(page, "admin-users-quota-error", ("#form-errors", f"{row} input.quota"))
        page.fill(f"{row} input.quota", "5 MiB")
        page.click(f"{row} button[aria-label^='Set quota']")
        assert page.inner_text("#flash") == "The user has been updated."
        assert "of 5 MiB" in page.inner_text(f"{row} .usage")
        assert page.input_value(f"{row} input.quota") == "5 MiB"
        assert h.db_rows(env, "SELECT upload_quota_bytes AS q FROM users WHERE id = %s", (user["id"],))[0]["q"] == 5 * MiB
        assert not failed, failed
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, user, "/upload/")
        page.wait_for_function("() => !document.getElementById('usage').hidden")
        assert "of your 5 MiB quota" in page.inner_text("#usage")       # the units the server writes
        big = tmp_path / "too-big.mp4"
        big.write_bytes(b"\0" * (6 * MiB))
        page.set_input_files("#file-input", str(big))
        page.wait_for_selector(".transfer[data-state='failed'] .error")
        message = page.inner_text(".transfer .error")
        assert "would exceed your storage quota" in message and "of 5 MiB used" in message, message
        check_page(page, "upload-quota-exceeded", (*HEADER, ".transfer .error", "#drop"))
        assert not failed, failed
    assert h.user_footprint(env, user["id"]) == {"videos": 0, "uploads": 0, "jobs": 0}
