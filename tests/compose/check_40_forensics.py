"""Phase 4 — trace a leak: a viewer's decrypted stream (an unmodified copy) is submitted
to the forensics API as admin; the workers name the leaking session."""
from __future__ import annotations

import os
import time
from pathlib import Path

from client import Gateway, User
from media import ContractClient

ADMIN_PASSWORD_FILE = os.environ.get("SV_ADMIN_PASSWORD_FILE", "var/compose-ci/secrets/admin_password")


def admin_token(gateway: Gateway) -> str:
    password = Path(ADMIN_PASSWORD_FILE).read_text().strip()
    r = gateway.post("/api/auth/login", json={"username": "admin", "password": password})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_forensics_is_admin_only(gateway: Gateway, user: User):
    gateway.login(user)
    r = gateway.post("/api/forensics/detect", files={"file": ("x.mp4", b"x")},
                     headers={"Authorization": f"Bearer {user.access_token}"})
    assert r.status_code == 403, r.text


def test_trace_a_leaked_stream(gateway: Gateway, user: User, ready_video: dict, tmp_path: Path):
    c = ContractClient(gateway.base).login(user.username, user.password)
    s = c.open_session(ready_video["id"])
    reps = [r for r in c.representations(s) if r.kind == "video"]
    rep = min(reps, key=lambda r: r.height or 0)
    leak = c.download(s, rep.id, tmp_path / "leak.mp4")
    c.end(s)
    token = admin_token(gateway)
    with open(leak, "rb") as fh:
        r = gateway.post("/api/forensics/detect", files={"file": ("leak.mp4", fh, "video/mp4")},
                         data={"video_id": ready_video["id"]}, headers={"Authorization": f"Bearer {token}"},
                         timeout=120)
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    t0 = time.monotonic()
    body: dict = {}
    while time.monotonic() - t0 < 300:
        if time.monotonic() - t0 > 120:
            token = admin_token(gateway)
        body = gateway.get(f"/api/forensics/detect/{job}", headers={"Authorization": f"Bearer {token}"}).json()
        if body.get("status") in ("done", "failed"):
            break
        time.sleep(2)
    assert body.get("status") == "done", body
    res = body["result"]
    print(f"\ntraced the leak in {time.monotonic() - t0:.1f}s: method={res.get('method')} "
          f"session={res['match'] and res['match']['session_id']} p={res['false_accusation_probability']}",
          flush=True)
    assert res["video_id"] == ready_video["id"]
    assert res["match"] and res["match"]["session_id"] == s.id
    assert res["match"]["user"]["username"] == user.username and res["match"]["device_id"] == c.device_id
