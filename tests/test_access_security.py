"""Issue #11 through the real stack (gateway, auth-svc, upload-svc, streaming-svc, MariaDB,
file-svc over SeaweedFS, the real media worker): video-password guessing across accounts
(item 4), grants and sessions after a password/visibility change (item 5), disabled users
(item 12), and odd integers in requests (item 7)."""
from __future__ import annotations

import uuid

import pytest
import requests

from svcommon.passwords import hash_password
from tests.support.contract_client import ContractClient, ContractError
from tests.support.media import ONE_RUNG
from tests.support.playback import get_until, refused_until, viewer
from tests.support.videos import make_ready_video, register_user, restart_service, sql

pytestmark = pytest.mark.heavy
CLIP_SECONDS = 4          # the shared ``clip`` fixture (tests/conftest.py)
CLIP_SIZE = ONE_RUNG

CACHE = 0.3
ACCESS_ENV = {"SESSION_CACHE_SECONDS": str(CACHE), "UNLOCK_MAX_FAILURES": "3", "UNLOCK_VIDEO_BURST": "4",
              "UNLOCK_VIDEO_REFILL_SECONDS": "600", "MAX_CONCURRENT_STREAMS": "10"}
PASSWORD = "the old password 7"


@pytest.fixture(scope="module")
def gw(live_stack):
    restart_service(live_stack, "streaming", {**live_stack["env"], **ACCESS_ENV})
    yield live_stack["url"]
    restart_service(live_stack, "streaming", live_stack["env"])


def events_of(conn, kind: str, user_id: str | None = None) -> int:
    where, params = "kind = %s", [kind]
    if user_id:
        where, params = where + " AND user_id = %s", params + [user_id]
    return sql(conn, f"SELECT COUNT(*) AS n FROM security_events WHERE {where}", tuple(params), one=True)["n"]


@pytest.fixture(scope="module")
def owner(gw):
    return register_user(gw, "owner")


@pytest.fixture
def ready_video(gw, worker_app, mdb, stores, owner, clip):
    def make(visibility="public", password_hash=None):
        return make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="access " + visibility,
                                visibility=visibility, password_hash=password_hash)
    return make


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def unlock(gw, video_id, token, password):
    return requests.post(f"{gw}/api/videos/{video_id}/unlock", json={"password": password}, headers=bearer(token))


def media_refused(client: ContractClient, s) -> requests.Response:
    """The session's init segment's 403, once streaming-svc's session lookup cache (CACHE s)
    has let it through; its key requests are refused the same way (segments themselves are
    public ciphertext, useless without keys)."""
    r = get_until(s.init0, lambda r: r.status_code == 403)
    err = refused_until(lambda: client.request_keys(s, "video", 0, 2))
    assert (err.status, err.code) == (403, r.json()["code"])
    return r


def open_playing(client: ContractClient, video_id: str):
    s = client.open_session(video_id)
    rep = client.representations(s)[0]
    s.init0, s.segment0 = rep.init_url, rep.segment_urls[0]
    assert requests.get(s.init0).status_code == 200
    assert client.fetch(s, s.segment0)            # keys flow while the session is live
    return s


def heartbeat_error(client: ContractClient, s) -> tuple[int, str]:
    with pytest.raises(ContractError) as err:
        client.heartbeat(s, 2.0)
    return err.value.status, err.value.code


# ---- item 4: password guessing across accounts -------------------------------------------------
def test_video_password_guesses_across_accounts_are_throttled_per_video(gw, mdb, owner):
    vid = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, password_hash, status) "
             "VALUES (%s, %s, 'guess me', '', 'password', %s, 'ready')", (vid, owner["id"], hash_password(PASSWORD)))
    guessers = [register_user(gw, "guesser") for _ in range(6)]
    # Each account stays far below its own limit (3), but together they fill the video's bucket (4).
    assert [unlock(gw, vid, g["access_token"], f"guess {i}").status_code for i, g in enumerate(guessers[:4])] \
        == [403] * 4
    r = unlock(gw, vid, guessers[4]["access_token"], "guess 5")
    assert r.status_code == 429 and r.json()["code"] == "video_unlock_throttled"
    assert 0 < int(r.headers["Retry-After"]) <= 600
    assert events_of(mdb, "unlock_video_throttled", guessers[4]["id"]) == 1
    # While the bucket is full even the right password waits: answering it would be an oracle.
    r = unlock(gw, vid, guessers[5]["access_token"], PASSWORD)
    assert r.status_code == 429 and r.json()["code"] == "video_unlock_throttled"
    # The refused attempts were not counted as the users' own failures.
    assert sql(mdb, "SELECT COUNT(*) AS n FROM unlock_throttle WHERE video_id = %s AND failures > 0", (vid,),
               one=True)["n"] == 4
    # A slow-down, not a lock: once a slot drains (time moved in the DB), the right password works.
    sql(mdb, "UPDATE unlock_video_throttle SET updated_at = updated_at - INTERVAL 601 SECOND WHERE video_id = %s",
        (vid,))
    assert unlock(gw, vid, guessers[5]["access_token"], PASSWORD).status_code == 204
    assert sql(mdb, "SELECT level FROM unlock_video_throttle WHERE video_id = %s", (vid,), one=True)["level"] \
        == pytest.approx(3, abs=0.1)    # the right password took no slot (0.1: a minute's drain)
    # The owner never needs to unlock.
    assert requests.get(f"{gw}/api/library?q=guess me", headers=bearer(owner["access_token"])).json()["items"][0][
        "locked"] is False


def test_parallel_guesses_from_one_account_cannot_pass_its_limit(gw, mdb, owner):
    from concurrent.futures import ThreadPoolExecutor
    vid = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, password_hash, status) "
             "VALUES (%s, %s, 'parallel', '', 'password', %s, 'ready')", (vid, owner["id"], hash_password(PASSWORD)))
    g = register_user(gw, "racer")
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: unlock(gw, vid, g["access_token"], f"x{i}").status_code, range(8)))
    assert sorted(codes) == [403] * 3 + [429] * 5


# ---- item 5: grants and sessions after a password or visibility change -------------------------
def test_password_change_revokes_grants_and_ends_sessions(gw, mdb, owner, ready_video):
    vid = ready_video("password", hash_password(PASSWORD))
    (_, c1), (u2, c2) = viewer(gw), viewer(gw)
    for c in (c1, c2):
        assert unlock(gw, vid, c.access_token, PASSWORD).status_code == 204
    s1, s2 = open_playing(c1, vid), open_playing(c2, vid)
    own = ContractClient(gw).login(owner["username"], owner["password"])
    s_owner = open_playing(own, vid)

    # A grant that disappears (as on a password change) ends the session at its next heartbeat.
    sql(mdb, "DELETE FROM video_access_grants WHERE user_id = %s AND video_id = %s", (u2["id"], vid))
    assert heartbeat_error(c2, s2) == (403, "access_revoked")
    row = sql(mdb, "SELECT ended_at, end_reason FROM playback_sessions WHERE id = %s", (s2.id,), one=True)
    assert row["ended_at"] is not None and row["end_reason"] == "access_revoked"
    assert events_of(mdb, "session_access_revoked", u2["id"]) == 1
    media_refused(c2, s2)

    # The owner changes the password through upload-svc: grants go, other viewers' sessions end.
    r = requests.patch(f"{gw}/api/videos/{vid}", json={"password": "a brand new one 8"},
                       headers=bearer(owner["access_token"]))
    assert r.status_code == 200, r.text
    assert sql(mdb, "SELECT COUNT(*) AS n FROM video_access_grants WHERE video_id = %s", (vid,), one=True)["n"] == 0
    r = media_refused(c1, s1)
    assert r.status_code == 403 and r.json()["code"] == "access_revoked"
    assert heartbeat_error(c1, s1) == (403, "access_revoked")
    with pytest.raises(ContractError) as err:
        c1.open_session(vid)
    assert (err.value.status, err.value.code) == (403, "locked")
    # The owner watches on; the old password opens nothing, the new one does.
    assert own.heartbeat(s_owner, 1.0)["key_epoch"] == 0
    assert unlock(gw, vid, c1.access_token, PASSWORD).status_code == 403
    assert unlock(gw, vid, c1.access_token, "a brand new one 8").status_code == 204
    assert open_playing(c1, vid).id


def test_making_a_video_private_ends_other_viewers_sessions(gw, mdb, owner, ready_video):
    vid = ready_video("public")
    user, c = viewer(gw)
    s = open_playing(c, vid)
    own = ContractClient(gw).login(owner["username"], owner["password"])
    s_owner = open_playing(own, vid)
    r = requests.patch(f"{gw}/api/videos/{vid}", json={"visibility": "private"}, headers=bearer(owner["access_token"]))
    assert r.status_code == 200, r.text
    media_refused(c, s)
    assert heartbeat_error(c, s) == (403, "access_revoked")
    assert events_of(mdb, "sessions_revoked", owner["id"]) >= 1
    assert own.heartbeat(s_owner, 1.0)["expires_at"]
    # Back to public and then to a password: no grant from before survives either change.
    sql(mdb, "INSERT INTO video_access_grants (user_id, video_id, expires_at) "
             "VALUES (%s, %s, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)", (user["id"], vid))
    for body in ({"visibility": "public"}, {"visibility": "password", "password": "fresh one 9"}):
        assert requests.patch(f"{gw}/api/videos/{vid}", json=body,
                              headers=bearer(owner["access_token"])).status_code == 200
    with pytest.raises(ContractError) as err:
        c.open_session(vid)
    assert (err.value.status, err.value.code) == (403, "locked")


# ---- item 12: disabled users -------------------------------------------------------------------
def test_disabling_a_user_ends_playback_and_refuses_their_tokens(gw, mdb, live_stack, ready_video):
    vid = ready_video("public")
    user, c = viewer(gw, "tobedisabled")
    s = open_playing(c, vid)
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin",
                                                        "password": live_stack["env"]["ADMIN_PASSWORD"]})
    r = requests.patch(f"{gw}/api/admin/users/{user['id']}", json={"disabled": True},
                       headers=bearer(admin.json()["access_token"]))
    assert r.status_code == 200, r.text
    row = sql(mdb, "SELECT ended_at, end_reason FROM playback_sessions WHERE id = %s", (s.id,), one=True)
    assert row["ended_at"] is not None and row["end_reason"] == "user_disabled"
    # Their access tokens (still within their 5 minutes) are refused at every check.
    assert heartbeat_error(c, s) == (403, "account_disabled")
    r = media_refused(c, s)
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"
    with pytest.raises(ContractError) as err:
        c.open_session(vid)
    assert (err.value.status, err.value.code) == (403, "account_disabled")
    r = requests.get(f"{gw}/api/library", headers=bearer(c.access_token))
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"
    # upload-svc too: no uploads, edits or listings with the leftover token.
    r = requests.get(f"{gw}/api/videos/mine", headers=bearer(c.access_token))
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"
    r = requests.post(f"{gw}/api/uploads", headers={**bearer(c.access_token), "Tus-Resumable": "1.0.0",
                                                    "Upload-Length": "10"})
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"
    assert events_of(mdb, "disabled_account", user["id"]) >= 5


def test_a_user_disabled_in_the_database_is_refused_too(gw, mdb, ready_video):
    """Not only through the admin API: streaming-svc reads the flag itself."""
    vid = ready_video("public")
    user, c = viewer(gw, "dbdisabled")
    s = open_playing(c, vid)
    sql(mdb, "UPDATE users SET disabled = 1 WHERE id = %s", (user["id"],))
    r = media_refused(c, s)
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"
    assert heartbeat_error(c, s) == (403, "account_disabled")


# ---- item 7: odd integers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def playing(gw, worker_app, mdb, stores, owner, clip):
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="odd input")
    _, c = viewer(gw)
    s = open_playing(c, vid)
    s.client = c
    return s


@pytest.mark.parametrize("digits", ["\u00b2\u00b2\u00b2\u00b2\u00b2", "\u0660\u0660\u0660\u0660\u0661",
                                    "\uff10\uff10\uff10\uff10\uff11", "-0001", "0001\u00b2"])
def test_segment_names_with_non_ascii_digits(playing, digits):
    base, name = playing.segment0.rsplit("/", 1)
    r = requests.get(f"{base}/{digits}{name[5:]}")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert "no-store" in r.headers["Cache-Control"]


@pytest.mark.parametrize("epoch", ["\u00b2", "1\u00b2", "0", -1, 1.5, True, None, [0]])
def test_odd_key_epochs_are_refused(playing, epoch):
    r = playing.client.call("POST", f"/api/stream/sessions/{playing.id}/keys",
                            {"track": "video", "from": 0, "count": 1, "key_epoch": epoch}, expect=None)
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"


def test_an_unknown_key_epoch_gets_the_current_one(playing):
    """Not a 500, nor another epoch's key."""
    r = playing.client.request_keys(playing, "video", 0, 1, key_epoch=99999999999999999999999)
    assert r.json()["key_epoch"] == 0


@pytest.mark.parametrize("page", ["99999999999999999999", "\u00b2", "\u0661", "0", "-1", "1e3", " 1"])
def test_odd_pages(gw, live_stack, page):
    user = register_user(gw, "pager")
    r = requests.get(f"{gw}/api/library", params={"page": page}, headers=bearer(user["access_token"]))
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin",
                                                        "password": live_stack["env"]["ADMIN_PASSWORD"]})
    r = requests.get(f"{gw}/api/admin/users", params={"page": page}, headers=bearer(admin.json()["access_token"]))
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "99999999999999999999", "+5"])
def test_tus_integer_headers(gw, value):
    user = register_user(gw, "tusodd")
    tus = {"Tus-Resumable": "1.0.0", **bearer(user["access_token"])}
    r = requests.post(f"{gw}/api/uploads", headers={**tus, "Upload-Length": value.encode("latin-1")})
    assert r.status_code == 400 and r.json()["code"] == "invalid_header"
    r = requests.post(f"{gw}/api/uploads", headers={**tus, "Upload-Length": "10"})
    assert r.status_code == 201
    r = requests.patch(gw + r.headers["Location"], data=b"0123456789",
                       headers={**tus, "Upload-Offset": value.encode("latin-1"),
                                "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_header"
