"""Each app answers S3 outages with its own Retry-After (it was a module global: the app
built last set it for every app in the process)."""
from __future__ import annotations

DEAD = "http://127.0.0.1:9"      # nothing listens on port 9


def test_retry_after_belongs_to_each_app(make_app, auth):
    first = make_app(S3_ENDPOINT=DEAD, S3_RETRY_AFTER_SECONDS=7)
    second = make_app(S3_ENDPOINT=DEAD, S3_RETRY_AFTER_SECONDS=11)
    for app, seconds in ((first, "7"), (second, "11")):
        r = app.test_client().put("/objects/originals/x/y", data=b"x", headers=auth())
        assert r.status_code == 503 and r.headers["Retry-After"] == seconds
