"""upload-svc fixtures: the app in-process (flaskr style) against the session's real
MariaDB and S3, with auth-svc and file-svc running live (their real HTTP APIs)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(ROOT / "tests"))

import ingest_helpers as h  # noqa: E402

from upload_svc import create_app  # noqa: E402


@pytest.fixture(scope="session")
def env(live_stack):
    return live_stack["env"]


@pytest.fixture(scope="session")
def make_app(service_config, live_stack):
    def make(**overrides):
        return create_app({**service_config, "LOG_LEVEL": "WARNING", **overrides})
    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def user(live_stack):
    return h.new_user(live_stack["url"])


@pytest.fixture
def other_user(live_stack):
    return h.new_user(live_stack["url"], "other")


@pytest.fixture
def admin_user(live_stack, env):
    """A fresh user made admin, logged in after the change (the token carries the role)."""
    user = h.new_user(live_stack["url"], "adm")
    h.set_role(env, user["id"], "admin")
    return h.login(live_stack["url"], user["username"], user["password"])


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Generated test files, made once per session."""
    d = tmp_path_factory.mktemp("media")
    good = h.make_video(d / "good.mp4", seconds=2)
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "text.mp4").write_bytes(b"this is not a video, just text pretending to be one\n" * 50)
    (d / "empty.mp4").write_bytes(b"")
    return d


class Tus:
    """Action helpers for the tus protocol against the test client."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def create(self, length: int, **meta):
        return self.client.post("/api/uploads", headers={**h.TUS, **self.headers, "Upload-Length": str(length),
                                                         "Upload-Metadata": h.tus_metadata(**meta)})

    def patch(self, location: str, offset: int, data: bytes, **extra):
        return self.client.patch(location, data=data, headers={
            **h.TUS, **self.headers, "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream", **extra})

    def head(self, location: str):
        return self.client.head(location, headers={**h.TUS, **self.headers})

    def upload(self, data: bytes, chunk: int = 6 * 1024 * 1024, **meta):
        r = self.create(len(data), **meta)
        assert r.status_code == 201, r.get_data(as_text=True)
        loc, offset, resp = r.headers["Location"], 0, None
        while offset < len(data):
            resp = self.patch(loc, offset, data[offset:offset + chunk])
            if resp.status_code != 204:
                return loc, resp
            offset = int(resp.headers["Upload-Offset"])
        return loc, resp


@pytest.fixture
def tus(client, user):
    return Tus(client, user["headers"])
