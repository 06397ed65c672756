"""The scale benchmark's calls to the stack beyond stack_api.py: a catalogue uploaded in one
go (every upload first, then one wait for all, so the worker never idles), and many
sessions opened cheaply through the real API."""
from __future__ import annotations

import time
from pathlib import Path

from stack_api import Admin, new_viewer


def upload_all(admin: Admin, files: dict[str, Path], known: dict[str, str], log=print) -> dict[str, str]:
    """{title: video id}: uploads the titles not yet in `known` or on the stack, then waits
    until every one is processed. Resumable: a title already on the stack is not re-sent."""
    mine = {v["title"]: v["id"] for v in admin.req("GET", "/api/videos/mine").json().get("items", [])}
    ids = dict(known)
    for title, path in files.items():
        if title in ids:
            continue
        if title in mine:
            ids[title] = mine[title]
            continue
        with open(path, "rb") as fh:
            r = admin.req("POST", "/api/videos", files={"file": (path.name, fh, "video/mp4")},
                          data={"title": title, "visibility": "public"})
        r.raise_for_status()
        ids[title] = r.json()["video"]["id"]
        log(f"uploaded {title} -> {ids[title]}")
    return ids


def wait_ready(admin: Admin, ids: dict[str, str], log=print, poll: float = 10) -> None:
    """Until every video in ids is processed (one /api/videos/mine read per poll)."""
    while True:
        status = {v["id"]: v["status"] for v in admin.req("GET", "/api/videos/mine").json().get("items", [])}
        failed = [t for t, vid in ids.items() if status.get(vid) == "failed"]
        if failed:
            raise RuntimeError(f"processing failed: {failed}")
        waiting = [t for t, vid in ids.items() if status.get(vid) != "ready"]
        if not waiting:
            return
        log(f"{len(waiting)} videos still processing")
        time.sleep(poll)


def open_download_sessions(gw: str, video_id: str, n: int, viewers: int = 20, log=print) -> list[str]:
    """n sessions of the video, opened through POST /api/stream/sessions by `viewers` users.
    The cheap session-only path: purpose "download" sessions get their keyed codeword like
    any other (every session of the video is scored) but hold no stream slot, so no
    heartbeat or end is needed; nothing is streamed."""
    clients = [new_viewer(gw) for _ in range(viewers)]
    out = []
    for i in range(n):
        out.append(clients[i % viewers].open_session(video_id, purpose="download").id)
        if (i + 1) % 250 == 0:
            log(f"{i + 1}/{n} sessions of {video_id}")
    return out
