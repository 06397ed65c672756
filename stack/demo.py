"""Seed a demo video on `make up` (once): wait for the gateway, log in as the bootstrap
admin, and upload a generated clip through the public API like any uploader would."""
from __future__ import annotations

import subprocess
import sys
import time

import requests

from .layout import SERVICES, Stack

TITLE = "StreamVault demo"


def make_demo_clip(path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=20",
                    "-f", "lavfi", "-i", "sine=frequency=330:duration=20",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", "-movflags", "+faststart", str(path)], check=True)


def _all_ready(stack: Stack) -> bool:
    try:
        return all(requests.get(f"{stack.url(name)}/readyz", timeout=2).status_code == 200 for name in SERVICES)
    except requests.RequestException:
        return False


def seed(stack: Stack, admin_password: str, timeout: float = 300) -> str:
    gw = stack.gateway_url
    deadline = time.monotonic() + timeout
    while not _all_ready(stack):
        if time.monotonic() > deadline:
            return "demo seed skipped: the services did not all become ready"
        time.sleep(1)
    r = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": admin_password}, timeout=10)
    if r.status_code != 200:
        return f"demo seed skipped: admin login answered {r.status_code}"
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    mine = requests.get(f"{gw}/api/videos/mine", headers=auth, timeout=10)
    if mine.status_code == 200 and any(v.get("title") == TITLE and v.get("status") in ("queued", "processing", "ready")
                                       for v in _items(mine.json())):
        return "demo video already present"
    clip = stack.var / "demo.mp4"
    if not clip.exists():
        partial = clip.with_suffix(".partial.mp4")   # renamed only when complete: a cut run
        try:                                         # never leaves a broken clip to reuse
            make_demo_clip(partial)
            partial.rename(clip)
        finally:
            partial.unlink(missing_ok=True)
    with open(clip, "rb") as f:
        resp = requests.post(f"{gw}/api/videos", headers=auth, timeout=300,
                             data={"title": TITLE, "description": "A generated test pattern, seeded by make up.",
                                   "visibility": "public"},
                             files={"file": ("demo.mp4", f, "video/mp4")})
    if resp.status_code != 201:
        return f"demo seed failed: {resp.status_code} {resp.text[:200]}"
    return f"demo video uploaded ({resp.json().get('video', {}).get('id', '?')}); processing starts now"


def _items(body) -> list:
    if isinstance(body, list):
        return body
    return body.get("items") or body.get("videos") or []


if __name__ == "__main__":
    from .__main__ import STACKS
    from .secrets import load_or_create
    # The stack `up` started (`--stack NAME`; dev by default).
    stack = STACKS[sys.argv[sys.argv.index("--stack") + 1] if "--stack" in sys.argv else "dev"]
    print("[demo] " + seed(stack, load_or_create(stack.var / "secrets.env")["ADMIN_PASSWORD"]), flush=True)
    sys.exit(0)
