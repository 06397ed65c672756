"""Password videos and the library through the real stack: the password unlocks a
grant, wrong guesses are throttled, search and pagination show each viewer what they may
see; anonymous visitors are sent to the login page."""
from __future__ import annotations

import pytest
import requests

from tests.support.media import ONE_RUNG
from tests.support.contract_client import ContractError
from tests.support.playback import VIDEO_PASSWORD, events_of, viewer
from tests.support.videos import sql

pytestmark = pytest.mark.heavy

CLIP_SIZE = ONE_RUNG        # the shared ``clip`` fixture: one rung is all these tests need


# ---- password videos and the library -----------------------------------------------------------
def test_password_video_needs_the_password(play, videos, mdb):
    user, c = viewer(play["url"], "guest")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    unlock = f"{play['url']}/api/videos/{videos['password']}/unlock"

    def locked_in_library() -> list[bool]:   # every module using ``videos`` adds a "Secret sunset clip"
        lib = requests.get(f"{play['url']}/api/library?q=Secret sunset", headers=auth).json()
        return [i["locked"] for i in lib["items"] if i["id"] == videos["password"]]

    with pytest.raises(ContractError) as err:
        c.open_session(videos["password"])
    assert (err.value.status, err.value.code) == (403, "locked")
    assert locked_in_library() == [True]
    r = requests.post(unlock, json={"password": "wrong"}, headers=auth)
    assert r.status_code == 403 and r.json()["code"] == "wrong_password"
    assert requests.post(unlock, json={"password": VIDEO_PASSWORD}, headers=auth).status_code == 204
    assert c.open_session(videos["password"]).id
    assert locked_in_library() == [False]
    grant = sql(mdb, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), expires_at) AS s FROM video_access_grants "
                     "WHERE user_id = %s AND video_id = %s", (user["id"], videos["password"]), one=True)
    assert 3500 <= grant["s"] <= 3600


def test_wrong_video_passwords_are_throttled(play, videos, mdb):
    user, c = viewer(play["url"], "guesser")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    unlock = f"{play['url']}/api/videos/{videos['password']}/unlock"
    codes = [requests.post(unlock, json={"password": f"guess {i}"}, headers=auth).status_code for i in range(3)]
    assert codes == [403, 403, 403]
    r = requests.post(unlock, json={"password": VIDEO_PASSWORD}, headers=auth)   # even the right one, now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert events_of(mdb, user["id"], "unlock_throttled") == 1


def test_library_search_pagination_and_visibility(play, videos, owner):
    _, c = viewer(play["url"], "browser")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    body = requests.get(f"{play['url']}/api/library?q=clip", headers=auth).json()
    titles = {i["title"] for i in body["items"]}
    assert {"Public sunrise clip", "Secret sunset clip"} <= titles and "Owner only diary" not in titles
    item = next(i for i in body["items"] if i["id"] == videos["public"])
    assert item["duration"] == pytest.approx(10, abs=0.5) and item["thumbnail_url"]
    thumb = requests.get(play["url"] + item["thumbnail_url"], headers=auth)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    own = requests.get(f"{play['url']}/api/library?q=Owner only diary",
                       headers={"Authorization": f"Bearer {owner['access_token']}"}).json()
    assert [i["id"] for i in own["items"]] == [videos["private"]]
    assert requests.get(f"{play['url']}/api/library?page=999", headers=auth).json()["items"] == []
    assert requests.get(f"{play['url']}/api/library?page=x", headers=auth).status_code == 400
    assert requests.get(f"{play['url']}/api/library").status_code == 401


def test_one_video_with_its_status(play, videos, mdb):
    """GET /api/library/{id}: what a "still processing" watch page polls; the same visibility
    rules as the list (private → 403, unknown → 404), ready or not."""
    _, c = viewer(play["url"], "poller")
    auth = {"Authorization": f"Bearer {c.access_token}"}
    one = lambda vid: requests.get(f"{play['url']}/api/library/{vid}", headers=auth)   # noqa: E731
    body = one(videos["public"]).json()
    assert body["status"] == "ready" and body["title"] == "Public sunrise clip" and body["thumbnail_url"]
    assert one(videos["password"]).json()["locked"] is True
    sql(mdb, "UPDATE videos SET status = 'processing' WHERE id = %s", (videos["public"],))
    try:
        body = one(videos["public"]).json()
        assert body["status"] == "processing" and body["thumbnail_url"] is None
    finally:
        sql(mdb, "UPDATE videos SET status = 'ready' WHERE id = %s", (videos["public"],))
    assert (one(videos["private"]).status_code, one(videos["private"]).json()["code"]) == (403, "private")
    assert one("0" * 32).status_code == 404
    assert requests.get(f"{play['url']}/api/library/{videos['public']}").status_code == 401


@pytest.mark.parametrize("path", ["/", "/watch/abc"])
def test_pages_send_anonymous_visitors_to_login(play, path):
    r = requests.get(play["url"] + path, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/auth/login?redirect=")
