"""upload-svc fixtures: the app in-process (flaskr style) against the session's real
MariaDB and S3, with auth-svc and file-svc running live (their real HTTP APIs)."""
from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

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
    yield h.login(live_stack["url"], user["username"], user["password"])
    # Back to a viewer: an extra admin left behind would let a later test's "last admin"
    # demote itself (tests share the stack's database, in whatever order a worker runs them).
    h.set_role(env, user["id"], "viewer")


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


class FileSvcProxy:
    """The real file-svc (or S3) behind a pass-through HTTP proxy that logs each request and
    lets a test fail or hold chosen ones (``rule(method, path) -> "fail" | None``; it may
    block): fault injection in front of the real service, nothing answered in its place.
    ``started`` lists requests as their headers arrive, ``aborted`` those whose body stopped
    short (the client closed the connection; nothing is forwarded).
    ``reroute = (from, to)`` sends the URLs it answers with (the part URLs file-svc signs)
    through another proxy: S3 checks a signature made for its own host, which the proxy
    forwards as Host, so the part is stored as it would be directly."""

    def __init__(self, upstream: str, reroute: tuple[str, str] | None = None):
        proxy = self
        self.upstream, self.seen, self.done, self.rule = upstream.rstrip("/"), [], [], None
        self.started, self.aborted = [], []
        self.reroute = reroute

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    size = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(size)
                    return body if len(body) == size else None
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def _forward(self):
                proxy.started.append((self.command, self.path))
                body = self._body()
                if body is None:
                    proxy.aborted.append((self.command, self.path))
                    self.close_connection = True
                    return
                proxy.seen.append((self.command, self.path))
                if proxy.rule and proxy.rule(self.command, self.path) == "fail":
                    payload = json.dumps({"error": "injected failure", "code": "storage_unavailable"}).encode()
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                skip = {"host", "transfer-encoding", "content-length", "connection"}
                r = requests.request(self.command, proxy.upstream + self.path, data=body, timeout=120,
                                     headers={k: v for k, v in self.headers.items() if k.lower() not in skip})
                content = r.content
                if proxy.reroute and "upload_id=" in self.path and self.command == "GET":
                    content = content.replace(*(u.encode() for u in proxy.reroute))
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in skip | {"content-encoding"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)
                proxy.done.append((self.command, self.path, r.status_code))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests_for(self, method: str, fragment: str) -> list[str]:
        return [path for m, path in self.seen if m == method and fragment in path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def file_proxy(service_config, env):
    """file-svc behind a proxy, and the parts' PUTs to S3 behind another (``file_proxy.s3``)."""
    s3 = FileSvcProxy(env["S3_ENDPOINT"])
    proxy = FileSvcProxy(service_config["FILE_SVC_URL"], reroute=(env["S3_ENDPOINT"], s3.url))
    proxy.s3 = s3
    yield proxy
    proxy.close()
    s3.close()


@pytest.fixture
def scratch(tmp_path):
    """A private scratch directory for the probe and the uploads' local copies."""
    d = tmp_path / "scratch"
    d.mkdir()
    return d


@pytest.fixture
def tus_for(user):
    """tus helpers for the user against another app instance (other settings)."""
    return lambda app: Tus(app.test_client(), user["headers"])
