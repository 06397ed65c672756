"""Following a video's processing: its event stream (GET /api/videos/{id}/events, SSE),
reconnected when the server ends it (after SSE_MAX_SECONDS), and plain polling of the video
when the server has no stream slot free (429: docs/api.md, upload-svc)."""
from __future__ import annotations

import json
import time
from typing import Callable, Iterator

import requests

from .api import Client
from .errors import EXIT_FAILED, CliError

SETTLED = ("ready", "failed")
POLL_SECONDS = 3


def _events(client: Client, video_id: str) -> Iterator[dict]:
    resp = client.request("GET", f"/api/videos/{video_id}/events", stream=True, timeout=(10, 30),
                          headers={"Accept": "text/event-stream"})
    data: list[str] = []
    with resp:
        try:
            # chunk_size None: each chunk of the chunked answer as it arrives (a fixed size
            # would hold an event back until that many more bytes came).
            for line in resp.iter_lines(chunk_size=None, decode_unicode=True):
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []
        except requests.RequestException:
            return                    # a dropped stream is reconnected by the caller


def wait_until_settled(client: Client, video_id: str, timeout: float,
                       on_state: Callable[[dict], None] = lambda s: None) -> dict:
    """The video's live state once it is ready (playable) or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for state in _events(client, video_id):
                on_state(state)
                if state["status"] in SETTLED:
                    return state
                if time.monotonic() > deadline:
                    break
        except CliError as exc:
            if exc.status != 429 and exc.code != "unreachable":
                raise
            state = client.json("GET", f"/api/videos/{video_id}")["video"]    # no stream slot: poll
            on_state(state)
            if state["status"] in SETTLED:
                return state
            time.sleep(POLL_SECONDS)
            continue
        time.sleep(1)                                  # the stream ended: reconnect, as EventSource does
    raise CliError(f"video {video_id} was not ready after {timeout:.0f} s", EXIT_FAILED, "timeout")
