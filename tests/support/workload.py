"""Clients that keep working while parts of the suite crash (the reliability tests and the
compose crash check): they retry as the documented clients do, and record what the suite
told them, so a test can check afterwards that nothing it acknowledged was lost."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from .contract_client import ContractClient, _index_of

RETRY_PAUSE = 1.0
RENEW_AFTER = 200.0        # seconds: a new login and session before the 5-minute tokens expire


class Viewer(threading.Thread):
    """Plays a ready video in a loop: fetches and decrypts segments of its session, opens a
    new session when one is refused (the player's renewal), and retries a failed request
    after a pause, as the player does; counts what went through and the longest outage.
    Cached segments bypass the services, so every fifth step also fetches the session's own
    init segment and sends a heartbeat, which go through them."""

    def __init__(self, base: str, username: str, password: str, video_id: str) -> None:
        super().__init__(daemon=True)
        self.base, self.username, self.password, self.video_id = base, username, password, video_id
        self.stop = threading.Event()
        self.segments, self.errors, self.longest_gap = 0, [], 0.0

    def run(self) -> None:
        client = session = rep = None
        last_ok = logged_in = time.monotonic()
        i = 0
        while not self.stop.is_set():
            try:
                if client is not None and time.monotonic() - logged_in > RENEW_AFTER:
                    if session is not None:                     # the player's renewal, before expiry
                        client.end(session)
                    client = session = None
                if client is None:
                    client = ContractClient(self.base).login(self.username, self.password)
                    logged_in = time.monotonic()
                if session is None:
                    session = client.open_session(self.video_id)
                    rep = min((r for r in client.representations(session) if r.kind == "video"),
                              key=lambda r: r.height or 0)
                url = rep.segment_urls[i % len(rep.segment_urls)]
                client.fetch(session, url, rep.id, _index_of(url, i % len(rep.segment_urls)))
                if i % 5 == 0:
                    client.fetch(session, rep.init_url)
                    client.heartbeat(session, float(2 * (i % len(rep.segment_urls))))
                self.segments += 1
                i += 1
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
                time.sleep(0.2)
            except Exception as exc:  # noqa: BLE001 - a crash in progress: retry as the player does
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                code = getattr(exc, "status", None) or getattr(getattr(exc, "response", None), "status_code", None)
                if code == 401:                       # login lost: log in again
                    client = session = None
                elif code in (403, 404, 410):         # session refused or ended: a new one
                    session = None
                time.sleep(RETRY_PAUSE)


@dataclass
class UploadOutcome:
    kind: str                      # "post" | "tus"
    video_id: str | None = None    # set once the suite acknowledged the upload (201 / last 204)
    retries: int = 0               # requests that failed and were retried (tus: resumed)
    errors: list[str] = field(default_factory=list)


class Uploader:
    """Uploads the way the documented clients do. POST /api/videos: one request; a failure is
    not an acknowledgement, so the client sends the whole file again. tus: the upload is
    created once and resumed from the offset HEAD reports after any failure (tus-js-client's
    behaviour), until the last PATCH is acknowledged. Tokens are renewed by logging in again."""

    def __init__(self, base: str, username: str, password: str, deadline_s: float = 240) -> None:
        self.base, self.username, self.password, self.deadline_s = base, username, password, deadline_s
        self.http = requests.Session()
        self.token = ""

    def _auth(self) -> dict:
        if not self.token:
            r = self.http.post(f"{self.base}/api/auth/login", json={"username": self.username,
                                                                   "password": self.password}, timeout=15)
            r.raise_for_status()
            self.token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.token}"}

    def _retrying(self, out: UploadOutcome, started: float, call):
        """``call()`` until it returns a response that is not a retryable failure."""
        while True:
            assert time.monotonic() - started < self.deadline_s, f"upload not done in {self.deadline_s} s: {out}"
            try:
                r = call(self._auth())
                if r.status_code == 401:
                    self.token = ""
                elif r.status_code < 500 and r.status_code != 429:
                    return r
                out.errors.append(f"{r.status_code} {r.text[:120]}")
            except requests.RequestException as exc:
                out.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            out.retries += 1
            time.sleep(RETRY_PAUSE)

    def post(self, data: bytes, title: str, visibility: str = "private") -> UploadOutcome:
        out, started = UploadOutcome("post"), time.monotonic()
        r = self._retrying(out, started, lambda h: self.http.post(
            f"{self.base}/api/videos", headers=h, data={"title": title, "visibility": visibility},
            files={"file": ("clip.mp4", data, "video/mp4")}, timeout=60))
        assert r.status_code == 201, (r.status_code, r.text[:300])
        out.video_id = r.json()["video"]["id"]
        return out

    def tus(self, data: bytes, title: str, chunk: int = 64 * 1024) -> UploadOutcome:
        import base64
        out, started = UploadOutcome("tus"), time.monotonic()
        meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                        (("filename", "clip.mp4"), ("title", title)))
        tus = {"Tus-Resumable": "1.0.0"}
        r = self._retrying(out, started, lambda h: self.http.post(
            f"{self.base}/api/uploads", headers={**h, **tus, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
            timeout=15))
        assert r.status_code == 201, (r.status_code, r.text[:300])
        url, offset = self.base + r.headers["Location"], 0
        while True:
            piece = data[offset:offset + chunk]
            try:
                r = self.http.patch(url, data=piece, timeout=30, headers={
                    **self._auth(), **tus, "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream"})
            except requests.RequestException as exc:
                r = None
                out.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            if r is not None and r.status_code == 204:
                offset = int(r.headers["Upload-Offset"])
                if offset == len(data):
                    out.video_id = r.headers["X-Video-Id"]
                    return out
                continue
            if r is not None:
                if r.status_code == 401:
                    self.token = ""
                out.errors.append(f"PATCH {r.status_code} {r.text[:120]}")
                assert r.status_code >= 500 or r.status_code in (401, 409, 429), (r.status_code, r.text[:300])
            out.retries += 1
            time.sleep(RETRY_PAUSE)
            # Resume from where the server says it is (tus core: HEAD).
            head = self._retrying(out, started, lambda h: self.http.head(url, headers={**h, **tus}, timeout=15))
            assert head.status_code in (200, 204), (head.status_code, "the upload was lost", out)
            offset = int(head.headers["Upload-Offset"])
            if offset == len(data):          # every byte is in: done (tus-js-client sends no PATCH then)
                out.video_id = head.headers["X-Video-Id"]
                return out
