"""The benchmark's calls to the stack: the admin (uploads, detections) and the viewers
whose sessions are opened and leaked, through the real API with the contract client."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import requests

from tests.support.contract_client import ContractClient

class Admin:
    """The admin's API calls; logs in again when the 5-minute access token expires."""

    def __init__(self, gw: str, password: str):
        self.gw, self.password = gw, password
        self._login()

    def _login(self) -> None:
        r = requests.post(f"{self.gw}/api/auth/login", json={"username": "admin", "password": self.password})
        r.raise_for_status()
        self.h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def req(self, method: str, path: str, **kw) -> requests.Response:
        for _ in range(2):
            for f in kw.get("files", {}).values():   # a retried upload must resend the file
                f[1].seek(0)
            r = requests.request(method, self.gw + path, headers=self.h, timeout=600, **kw)
            if r.status_code != 401:
                return r
            self._login()
        return r

    def upload(self, path: Path, title: str) -> str:
        mine = self.req("GET", "/api/videos/mine").json().get("items", [])
        reuse = next((v["id"] for v in mine if v["title"] == title and v["status"] in ("queued", "processing", "ready")), None)
        if reuse:
            vid = reuse
        else:
            with open(path, "rb") as fh:
                r = self.req("POST", "/api/videos", files={"file": (path.name, fh, "video/mp4")},
                             data={"title": title, "visibility": "public"})
            r.raise_for_status()
            vid = r.json()["video"]["id"]
        while True:
            r = self.req("GET", f"/api/videos/{vid}")
            r.raise_for_status()
            v = r.json()
            status = v.get("status") or v.get("video", {}).get("status")
            if status == "ready":
                return vid
            if status == "failed":
                raise RuntimeError(f"processing failed: {v}")
            time.sleep(3)

    def detect(self, path: Path, video_id: str | None = None) -> tuple[dict, float]:
        t0 = time.monotonic()
        with open(path, "rb") as fh:
            r = self.req("POST", "/api/forensics/detect", files={"file": (path.name, fh)},
                         data={"video_id": video_id} if video_id else {})
        r.raise_for_status()
        job = r.json()["job_id"]
        while True:
            r = self.req("GET", f"/api/forensics/detect/{job}")
            r.raise_for_status()
            body = r.json()
            if body["status"] in ("done", "failed"):
                break
            time.sleep(1)
        elapsed = time.monotonic() - t0
        full = self.req("GET", f"/api/forensics/detect/{job}/report.json")
        return (full.json() if full.ok else body), elapsed


def new_viewer(gw: str, prefix: str = "bench") -> ContractClient:
    """A fresh account, logged in. Sign-ups are throttled per address (the stack should run with
    SIGNUP_MAX_PER_IP raised) and every sign-up's password is checked against
    PASSWORD_CHECKS_PER_MINUTE: on 429 this waits the Retry-After and tries again."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pw = "bench password " + name
    for _ in range(10):
        r = requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@b.test", "password": pw},
                          timeout=60)
        if r.status_code != 429:
            break
        time.sleep(float(r.headers.get("Retry-After", "5")) + 0.5)
    if r.status_code != 201:
        raise RuntimeError(f"sign-up of a bench viewer: {r.status_code} {r.text[:300]}")
    return ContractClient(gw).login(name, pw)


def open_sessions(gw: str, video_id: str, n: int, viewers: int = 10) -> list[tuple[ContractClient, str]]:
    clients = [new_viewer(gw) for _ in range(viewers)]
    out = []
    for i in range(n):
        c = clients[i % viewers]
        s = c.open_session(video_id)
        c.end(s)
        out.append((c, s.id))
    return out


def leak_stream(gw: str, video_id: str, dest: Path) -> tuple[str, Path]:
    """A fresh session of a fresh viewer, fully downloaded and decrypted (top rung)."""
    c = new_viewer(gw, "leaker")
    s = c.open_session(video_id)
    top = max((r for r in c.representations(s) if r.kind == "video"), key=lambda r: r.height or 0)
    c.download(s, top.id, dest)
    c.end(s)
    return s.id, dest
