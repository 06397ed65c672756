"""Deleting a video as seen by viewers: upload-svc commits the video's 'deleting' mark,
removes its objects without holding a lock, then its row. From the mark on the video is
gone for playback; a session insert racing the mark gets a clear 409 from streaming-svc."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import mysql.connector
import pytest

from tests.support.contract_client import ContractClient, ContractError
from tests.support.videos import connect_db, make_ready_video, register_user, sql

pytestmark = pytest.mark.heavy


CLIP_SECONDS = 4        # the shared ``clip`` fixture (tests/conftest.py): short, processed twice


@pytest.fixture
def viewer(live_stack):
    user = register_user(live_stack["url"], "viewer")
    return user, ContractClient(live_stack["url"]).login(user["username"], user["password"])


def test_a_video_being_deleted_is_gone_for_viewers(viewer, mdb, worker_app, stores, owner_id, clip):
    """upload-svc's delete commits the 'deleting' mark first, then removes objects and row."""
    vid = make_ready_video(worker_app, mdb, stores, owner_id, clip, title="being deleted")
    client = viewer[1]
    s = client.open_session(vid)
    sql(mdb, "UPDATE videos SET status = 'deleting' WHERE id = %s", (vid,))
    with pytest.raises(ContractError) as err:
        client.heartbeat(s, 1.0)
    assert (err.value.status, err.value.code) == (410, "video_unavailable")
    with pytest.raises(ContractError) as err:
        client.open_session(vid)
    assert (err.value.status, err.value.code) == (404, "not_found")
    assert vid not in {v["id"] for v in client.call("GET", "/api/library").json()["items"]}
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))


def test_session_for_a_video_deleted_meanwhile_is_a_clear_409(viewer, mdb, service_config, worker_app,
                                                              stores, owner_id, clip):
    """The delete's mark lands between the session's checks and its insert: 409 there (not a
    500 from the foreign key, not a session for a video on its way out)."""
    vid = make_ready_video(worker_app, mdb, stores, owner_id, clip, title="deleted meanwhile")
    user, client = viewer
    deleter, probe = connect_db(service_config), connect_db(service_config)
    deleter.autocommit = probe.autocommit = False
    try:
        sql(deleter, "UPDATE videos SET status = 'deleting' WHERE id = %s", (vid,))    # held, not committed
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(client.open_session, vid)
            deadline = time.monotonic() + 30
            while True:            # past its checks once it holds the user's row (stream-limit lock)
                try:
                    sql(probe, "SELECT id FROM users WHERE id = %s FOR UPDATE NOWAIT", (user["id"],))
                    probe.rollback()
                except mysql.connector.errors.DatabaseError:
                    break
                assert not opening.done() and time.monotonic() < deadline, opening
                time.sleep(0.02)
            deleter.commit()
            with pytest.raises(ContractError) as err:
                opening.result(30)
    finally:
        deleter.close()
        probe.close()
    assert (err.value.status, err.value.code) == (409, "gone_meanwhile")
    assert sql(mdb, "SELECT COUNT(*) AS n FROM playback_sessions WHERE video_id = %s", (vid,), one=True)["n"] == 0
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))
