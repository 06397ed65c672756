"""File-svc failures get one answer, from one app-level handler, logged like every other
refusal; the expired-upload sweep runs for uploads actually being created."""
from __future__ import annotations

import logging

import ingest_helpers as h

DEAD = "http://127.0.0.1:9"      # nothing listens on port 9


def _create(client, headers, length: int = 1000, filename: str = "x.mp4"):
    return client.post("/api/uploads", headers={**h.TUS, **headers, "Upload-Length": str(length),
                                                "Upload-Metadata": h.tus_metadata(filename=filename)})


def _refusals(caplog) -> list[tuple[int, str]]:
    return [(r.status, r.code) for r in caplog.records if r.name == "svcommon.errors" and hasattr(r, "code")]


def test_storage_down_is_one_logged_answer_everywhere(make_app, client, user, env, caplog):
    """tus create (the handler) and tus terminate (formerly a hand conversion) answer alike,
    and both are logged; the failed create leaves no row, the failed terminate keeps it."""
    broken = make_app(FILE_SVC_URL=DEAD).test_client()
    r = client.post("/api/uploads", headers={**h.TUS, **user["headers"], "Upload-Length": "1000",
                                             "Upload-Metadata": h.tus_metadata(filename="kept.mp4")})
    assert r.status_code == 201
    loc, vid = r.headers["Location"], r.headers["X-Video-Id"]
    with caplog.at_level(logging.WARNING, logger="svcommon.errors"):
        created = _create(broken, user["headers"], filename="lost.mp4")
        terminated = broken.delete(loc, headers={**h.TUS, **user["headers"]})
    for resp in (created, terminated):
        assert resp.status_code == 503 and resp.json["code"] == "storage_unavailable"
        assert resp.headers["Retry-After"] == "5" and resp.headers["Tus-Resumable"] == "1.0.0"
    assert _refusals(caplog) == [(503, "storage_unavailable")] * 2
    assert h.db_rows(env, "SELECT id FROM videos WHERE owner_id = %s AND original_filename = 'lost.mp4'",
                     (user["id"],)) == []
    assert h.db_rows(env, "SELECT id FROM videos WHERE id = %s", (vid,))     # delete it again later


def test_refused_create_does_not_sweep(tus, make_app, user, env):
    """Only an accepted upload creation sweeps expired uploads: an anonymous or refused POST
    makes the server do no sweep work (it used to, from a path-matching before_request)."""
    r = tus.create(1000, filename="abandoned.mp4")
    vid = r.headers["X-Video-Id"]
    h.db_execute(env, "UPDATE uploads SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE video_id = %s", (vid,))
    fresh = make_app().test_client()                 # another process: its first sweep is due
    assert _create(fresh, {}).status_code == 401
    assert _create(fresh, user["headers"], length=0).status_code == 400
    assert h.db_rows(env, "SELECT id FROM videos WHERE id = %s", (vid,))
    assert _create(fresh, user["headers"]).status_code == 201
    assert h.db_rows(env, "SELECT id FROM videos WHERE id = %s", (vid,)) == []
