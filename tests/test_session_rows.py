"""streaming-svc's hot session lookups read their row as one JSON column (svcommon.db.JsonRow,
for the pure-Python client's sake): on a real session of the real MariaDB, with every
nullable column filled and awkward text, they must give exactly what a plain column-per-column
SELECT gives, value for value and type for type (bytes, datetimes, floats, integers, NULL);
and so must the key release's answer, which its procedure (migrations 028, 029) writes by
hand. Since 029 that procedure also restates the view's access rule (lost_reason): the two
must agree in every case the rule distinguishes."""
from __future__ import annotations

import datetime
import uuid

import pytest

from streaming_svc import repository as repo
from svcommon.db import JsonRow
from svcommon.dpop import replay_entry
from tests.support.media import ONE_RUNG
from tests.support.playback import viewer
from tests.support.videos import sql

CLIP_SIZE = ONE_RUNG


def _typed(row: dict) -> dict:
    return {k: (type(v).__name__, v) for k, v in row.items()}


def _same(got: dict, plain: dict) -> None:
    assert set(got) == set(plain)
    assert _typed(got) == _typed(plain)


def test_json_rows_equal_plain_selects_value_for_value(gw, delivery_video, mdb):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    states = [
        # As opened: NULLs, zeros (a DOUBLE 0 is written 0 in JSON), no previous CEK.
        {},
        # Every nullable column set, fractional doubles and seconds, text JSON must escape.
        {"prev_cek_enc": b"\x00\xff" * 30, "ended_at": datetime.datetime(2026, 12, 6, 1, 2, 3, 456789),
         "end_reason": "ended_by_client", "last_heartbeat_at": datetime.datetime(2026, 12, 6, 1, 2, 3),
         "viewed_at": datetime.datetime(2026, 12, 6, 1, 2, 3, 1), "position": 12.345678901234567,
         "video_key_seconds": 6.015998999999999, "audio_key_seconds": 1e20, "startup_ms": 321,
         "watch_ms": 2 ** 40, "watched_mask": 2 ** 32 - 1, "counted_view": 1,
         "user_agent": 'Mozilla "quoted" \\ back\nslash \u00e9\u20ac\U0001F600', "ip": None},
    ]
    for change in states:
        if change:
            sets = ", ".join(f"{k} = %s" for k in change)
            sql(mdb, f"UPDATE playback_sessions SET {sets} WHERE id = %s", (*change.values(), s.id))
        plain = sql(mdb, f"SELECT {repo.SESSION_COLS} FROM playback_sessions s WHERE s.id = %s", (s.id,), one=True)
        _same(repo.session_by_id(mdb, s.id), plain)
        _same(repo.session_by_id(mdb, s.id, for_update=True), plain)
        mdb.rollback()
        plain = sql(mdb, "SELECT * FROM playback_session_delivery WHERE id = %s", (s.id,), one=True)
        _same(repo.session_for_delivery(mdb, s.id), plain)
        # The key release's answer (migrations 028 and 029 write its JSON object by hand): the same row
        # as it is after the charge, plus charged and elapsed.
        released = repo.release_keys(mdb, replay_entry(f"rows-{len(change)}-{s.id}", 60), s.id, plain["user_id"],
                                     plain["jkt"], "video", 2.0, 60.0, 1.5)
        assert released.pop("charged") == (0 if change else 1)
        assert isinstance(released.pop("elapsed"), float)
        _same(released, sql(mdb, "SELECT * FROM playback_session_delivery WHERE id = %s", (s.id,), one=True))
    assert repo.session_by_id(mdb, "0" * 32) is None
    assert repo.session_for_delivery(mdb, "0" * 32) is None


def test_a_json_row_names_its_columns_and_hexes_binary_ones():
    row = JsonRow.of("s.id, s.kek_enc, v.status AS video_status", binary=("kek_enc",))
    assert row.names == ["id", "kek_enc", "video_status"]
    assert row.json_object == "JSON_OBJECT('id', s.id, 'kek_enc', HEX(s.kek_enc), 'video_status', v.status)"
    assert row.decode('{"id": "x", "kek_enc": "00FF", "video_status": null}') == \
        {"id": "x", "kek_enc": b"\x00\xff", "video_status": None}


# (video visibility, the viewer owns it, a grant, the viewer's role, account disabled, device
# revoked) -> the lost_reason the rule gives (migration 026's view).
ACCESS_CASES = [
    (("public", False, False, "viewer", False, False), None),
    (("private", False, False, "viewer", False, False), "access_revoked"),
    (("private", True, False, "viewer", False, False), None),
    (("private", False, False, "admin", False, False), None),
    (("password", False, False, "viewer", False, False), "access_revoked"),
    (("password", False, True, "viewer", False, False), None),      # an expired grant still covers it
    (("password", False, False, "uploader", False, False), "access_revoked"),
    (("public", False, False, "viewer", True, False), "user_disabled"),
    (("private", True, False, "admin", False, True), "device_revoked"),
    (("public", False, False, "viewer", True, True), "user_disabled"),
]


@pytest.mark.parametrize("state,expected", ACCESS_CASES)
def test_the_key_release_states_the_access_rule_as_the_view_does(gw, delivery_video, mdb, state, expected):
    vid, _ = delivery_video
    _, c = viewer(gw)
    s = c.open_session(vid)
    row = sql(mdb, "SELECT user_id, jkt, device_id FROM playback_sessions WHERE id = %s", (s.id,), one=True)
    owner = sql(mdb, "SELECT owner_id FROM videos WHERE id = %s", (vid,), one=True)["owner_id"]
    visibility, owns, grant, role, disabled, revoked = state
    # The session is moved to a video of its own, so the module's video keeps its state.
    other = uuid.uuid4().hex
    sql(mdb, "INSERT INTO videos (id, owner_id, title, description, visibility, status) "
             "VALUES (%s, %s, 'Rule case', '', %s, 'ready')", (other, row["user_id"] if owns else owner, visibility))
    try:
        sql(mdb, "UPDATE playback_sessions SET video_id = %s WHERE id = %s", (other, s.id))
        if grant:
            sql(mdb, "INSERT INTO video_access_grants (user_id, video_id, expires_at) "
                     "VALUES (%s, %s, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)", (row["user_id"], other))
        sql(mdb, "UPDATE users SET role = %s, disabled = %s WHERE id = %s", (role, int(disabled), row["user_id"]))
        sql(mdb, "UPDATE devices SET revoked_at = IF(%s, UTC_TIMESTAMP(6), NULL) WHERE id = %s",
            (int(revoked), row["device_id"]))
        view = sql(mdb, "SELECT lost_reason FROM playback_session_delivery WHERE id = %s", (s.id,), one=True)
        released = repo.release_keys(mdb, replay_entry(f"rule-{s.id}", 60), s.id, row["user_id"], row["jkt"],
                                     "video", 2.0, 60.0, 1.5)
        assert (view["lost_reason"], released["lost_reason"]) == (expected, expected)
    finally:      # nothing of the case outlives it (an admin or disabled account could change other tests)
        sql(mdb, "UPDATE playback_sessions SET video_id = %s WHERE id = %s", (vid, s.id))
        sql(mdb, "DELETE FROM videos WHERE id = %s", (other,))
        sql(mdb, "UPDATE users SET role = 'viewer', disabled = 0 WHERE id = %s", (row["user_id"],))
        sql(mdb, "UPDATE devices SET revoked_at = NULL WHERE id = %s", (row["device_id"],))
