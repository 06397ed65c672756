"""Request bodies through the real gateway and services (issue #11, items 2 and 14): every
route has a body limit enforced before the body is read (at the gateway and in each
service), large routes check the caller first, slow senders never reach a service
thread, and a request answered before its body was read never breaks the next request
on the same keep-alive connection."""
from __future__ import annotations

import json
import random
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests import ingest_helpers as h

KiB, MiB = 1024, 1024 * 1024


def early_answer(url: str, method: str, path: str, declared: int, headers: dict | None = None,
                 sent: bytes = b"", timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Announce a body of ``declared`` bytes, send only ``sent`` of it and read the answer:
    a route that refuses before reading the body answers at once; one that reads it would
    wait for the rest (the issue: no answer after 10 s, and a spooled temp file)."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}", f"Content-Length: {declared}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items()), "", ""]
        s.sendall("\r\n".join(lines).encode() + sent)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            assert time.monotonic() < deadline, f"no answer to {method} {path} within {timeout} s"
            chunk = s.recv(65536)
            assert chunk, f"connection closed without an answer to {method} {path}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in header_lines)}
        want = int(hdrs.get("content-length", "0"))
        while len(body) < want and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(status_line.split()[1]), hdrs, body


FORM = {"Content-Type": "multipart/form-data; boundary=x"}
JSON = {"Content-Type": "application/json"}
# Small routes, anonymous or cookie-authenticated, that parsed their body before any check.
SMALL_ROUTES = [
    ("POST", "/auth/login", FORM), ("POST", "/auth/logout", FORM), ("POST", "/auth/signup", FORM),
    ("POST", "/api/auth/register", JSON), ("POST", "/api/auth/login", JSON),
    ("POST", "/api/stream/sessions", FORM), ("POST", "/api/videos/0123/unlock", JSON),
    ("PATCH", "/api/videos/0123", JSON),
]
SERVICE_OF = {"/auth/": "auth", "/api/auth/": "auth", "/api/stream/": "streaming", "/api/videos/0123/unlock": "streaming",
              "/api/videos/": "upload"}


def _service(path: str) -> str:
    return next(svc for prefix, svc in SERVICE_OF.items() if path.startswith(prefix))


@pytest.mark.parametrize("method, path, headers", SMALL_ROUTES)
def test_small_routes_refuse_big_bodies_before_reading_them(live_stack, method, path, headers):
    gw, stack = live_stack["url"], live_stack["stack"]
    # At the gateway (client_max_body_size), for a 64 MiB announced body of which nothing is sent.
    status, hdrs, body = early_answer(gw, method, path, 64 * MiB, headers)
    assert status == 413 and json.loads(body)["code"] == "body_too_large"
    # And in the service itself (BODY_MAX_BYTES), in case anything else reaches it.
    status, hdrs, body = early_answer(stack.url(_service(path)), method, path, 64 * MiB,
                                      {**headers, "Accept": "application/json"})
    answer = body.decode()
    assert status == 413 and "body_too_large" in answer and f"{64 * KiB} bytes" in answer
    assert hdrs.get("connection") == "close"          # the unread body is not left on a kept connection


def test_a_body_within_the_limit_still_works(live_stack):
    gw = live_stack["url"]
    padding = "x" * (60 * KiB)                         # just under the 64 KiB default
    r = requests.post(f"{gw}/api/auth/login", json={"username": "nobody", "password": "x", "pad": padding}, timeout=10)
    assert r.status_code == 401
    r = requests.post(f"{gw}/api/auth/login", json={"username": "nobody", "password": "x", "pad": padding * 2},
                      timeout=10)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


def test_chunked_bodies_are_limited_too(live_stack):
    gw, stack = live_stack["url"], live_stack["stack"]

    def chunks():
        for _ in range(40):
            yield b"x" * (8 * KiB)
    for base in (gw, stack.url("auth")):
        r = requests.post(f"{base}/api/auth/register", data=chunks(), timeout=10,
                          headers={"Content-Type": "application/json", "Accept": "application/json"})
        assert r.status_code == 413, (base, r.text)
        assert "body_too_large" in r.text


@pytest.fixture(scope="module")
def viewer(live_stack):
    return h.new_user(live_stack["url"], "body")


@pytest.mark.parametrize("method, path, content_type", [
    ("POST", "/api/forensics/detect", "multipart/form-data; boundary=x"),
    ("POST", "/api/videos", "multipart/form-data; boundary=x"),
    ("PATCH", "/api/uploads/" + "0" * 32, "application/offset+octet-stream"),
])
def test_large_routes_check_the_caller_before_the_body(live_stack, viewer, method, path, content_type):
    """Only the upload routes and forensics take big bodies, and only from a caller that may."""
    gw = live_stack["url"]
    hdrs = {"Content-Type": content_type, "Tus-Resumable": "1.0.0", "Upload-Offset": "0"}
    status, _, body = early_answer(gw, method, path, 2 * 1024 * MiB, hdrs)      # anonymous
    assert status == 401, body
    if path == "/api/forensics/detect":                                           # not an admin
        status, _, body = early_answer(gw, method, path, 2 * 1024 * MiB, {**hdrs, **viewer["headers"]})
        assert status == 403 and json.loads(body)["code"] == "forbidden"
    # Over the route's own limit: refused on the header, whoever asks.
    status, _, body = early_answer(gw, method, path, 64 * 1024 ** 4, {**hdrs, **viewer["headers"]})
    assert status == 413 and json.loads(body)["code"] == "body_too_large"


def send_then_read(url: str, method: str, path: str, declared: int, headers: dict,
                   bytes_per_s: float) -> tuple[int, int, bytes]:
    """A client that reads the answer only once it has sent its body, as browsers and most
    HTTP clients do, sending at ``bytes_per_s`` (a slow uplink): (status, bytes sent when
    the body was sent whole or the connection broke, answer body)."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}", f"Content-Length: {declared}",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        s.sendall("\r\n".join(lines).encode())
        sent, block, started = 0, bytes(256 * KiB), time.monotonic()
        try:
            while sent < declared:
                s.sendall(block[:declared - sent])
                sent += min(len(block), declared - sent)
                time.sleep(max(0.0, sent / bytes_per_s - (time.monotonic() - started)))   # the uplink's pace
        except (BrokenPipeError, ConnectionResetError):
            pass                                   # the server closed: its answer is already here
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, "connection closed without an answer"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), sent, body


def test_a_refused_upload_chunk_is_answered_soon_on_a_slow_uplink(live_stack):
    """A tus PATCH refused before its body is read (here 401: an expired access cookie in the
    middle of a long upload), from a client that reads only after sending, at 8 MiB/s: the
    gateway drops the rest of the body for at most 5 s (lingering_time) and then closes, so
    the client sees the 401 after about 40 MiB, not after its whole 200 MiB chunk (nginx's
    default, 30 s, let the whole chunk go: 25 s at this pace)."""
    hdrs = {**h.TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    status, sent, body = send_then_read(live_stack["url"], "PATCH", "/api/uploads/" + "0" * 32, 200 * MiB, hdrs,
                                        8 * MiB)
    assert status == 401 and json.loads(body)["code"] == "unauthorized", body
    assert sent < 100 * MiB, f"the answer came only after {sent / MiB:.0f} MiB"


def test_slow_senders_never_hold_a_service_thread(live_stack):
    """More slow senders than auth-svc has threads (2 x 8): the gateway holds their bodies,
    so a normal login still answers at once."""
    gw = urlsplit(live_stack["url"])
    slow = []
    try:
        for _ in range(24):
            s = socket.create_connection((gw.hostname, gw.port), timeout=5)
            s.sendall(f"POST /api/auth/login HTTP/1.1\r\nHost: {gw.netloc}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: 2000\r\n\r\n{{\"username\": ".encode())
            slow.append(s)
        time.sleep(0.5)   # let the gateway hand them on, if it were going to
        t0 = time.monotonic()
        r = requests.post(f"{live_stack['url']}/api/auth/login", json={"username": "nobody", "password": "x"},
                          timeout=10)
        assert r.status_code == 401 and time.monotonic() - t0 < 3
    finally:
        for s in slow:
            s.close()


def test_refused_requests_never_break_the_next_on_a_kept_connection(live_stack, viewer):
    """A tus PATCH answered 409 before its body is read, then the right PATCH, on one
    keep-alive connection, many times, with bodies from a few KB to several MB: never a
    502 (the gateway must not send the next request into a half-read connection)."""
    gw = live_stack["url"]
    rng = random.Random(11)
    tus = {**h.TUS, **viewer["headers"]}
    http = requests.Session()
    for size, reps in ((4 * KiB, 30), (150 * KiB, 30), (1536 * KiB, 30), (5 * MiB, 10)):
        total = size * reps + 1                       # never completes: no probe, no processing
        r = http.post(f"{gw}/api/uploads", headers={**tus, "Upload-Length": str(total),
                                                    "Upload-Metadata": h.tus_metadata(filename="k.mp4")}, timeout=10)
        assert r.status_code == 201, r.text
        loc = gw + r.headers["Location"]
        patch = {**tus, "Content-Type": "application/offset+octet-stream"}
        offset = 0
        for i in range(reps):
            chunk = rng.randbytes(size)
            if offset == 0:                           # a file's first bytes are checked to be a video's
                chunk = h.MP4_HEAD + chunk[len(h.MP4_HEAD):]
            bad = http.patch(loc, data=chunk, headers={**patch, "Upload-Offset": str(offset + 1)}, timeout=30)
            assert bad.status_code == 409, (size, i, bad.status_code, bad.text)
            anon = http.patch(loc, data=chunk, headers={**h.TUS, "Upload-Offset": str(offset),
                                                        "Content-Type": "application/offset+octet-stream"}, timeout=30)
            assert anon.status_code == 401, (size, i, anon.status_code, anon.text)
            ok = http.patch(loc, data=chunk, headers={**patch, "Upload-Offset": str(offset)}, timeout=30)
            assert ok.status_code == 204, (size, i, ok.status_code, ok.text)
            offset += size
            assert int(ok.headers["Upload-Offset"]) == offset
        assert http.delete(loc, headers=tus, timeout=10).status_code == 204


def test_oversized_json_answers_quickly_and_writes_nothing(live_stack):
    """The issue's example: POST /api/auth/register with a 64 MiB body (no answer after 10 s)."""
    name = "big" + uuid.uuid4().hex[:8]
    body = json.dumps({"username": name, "email": f"{name}@e.test", "password": "a long password",
                       "pad": "x" * (64 * MiB)})
    t0 = time.monotonic()
    r = requests.post(f"{live_stack['url']}/api/auth/register", data=body, headers=JSON, timeout=20)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    assert time.monotonic() - t0 < 10
    assert h.db_rows(live_stack["env"], "SELECT id FROM users WHERE username = %s", (name,)) == []
