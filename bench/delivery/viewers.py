"""One realtime viewer, as the player behaves (docs/api.md, delivery v2), on the lean async
client of loadgen.py with the contract client's primitives: a device key and device-bound
token (DPoP), a session opened with an ephemeral ECDH key (KEK, CEK, first keys in the
response), the per-session manifest and init segments, then segments fetched from /media on
the realtime schedule, segment keys fetched ahead from the key endpoint (16 per request from
the session's first keys on, runs of 8, 4, 8, 16 from anywhere else, 6 segments ahead of
playback, as streaming-svc/static/player.js does: KEY_RUN, KEYS_AHEAD and a 10-s buffer),
heartbeats at the interval the session
names. A segment that is not in (with its key) by its playback time is a stall. Without a
session (``Viewer.static``) the same loop fetches plaintext files from static nginx: the ceiling."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from loadgen import Conn, Response
from tests.support.contract_client import (decrypt_segment, ephemeral_key, parse_mpd, parse_segment_url,
                                           session_kek, track_of, unwrap_cek, unwrap_segment_key)
from tests.support.dpop import FINGERPRINT, DeviceKey

MEDIA = "media"       # byte/request categories; everything else went through Python


@dataclass
class Plan:
    gateway: str                 # the API origin (and /media in gateway mode)
    video_id: str
    rendition: str
    slots: int                   # segments each viewer plays (the video is looped if shorter)
    seg_seconds: float = 2.0
    startup: float = 2.0         # slot 0 is due this long after the click
    ahead: int = 2               # segments buffered ahead at most
    key_run: tuple[int, ...] = (8, 4, 8, 16)   # keys per request along a run, the last repeated, and ...
    # ... asked for this many slots past the one fetched. The player asks KEYS_AHEAD (1) past the
    # segment shaka fetches, which fills a 10-s buffer: 6 segments ahead of playback; here the
    # slot fetched is ``ahead`` (2) ahead, so 4 more.
    key_prefetch: int = 4
    audio: bool = True
    decrypt_first: bool = True   # decrypt slot 0 of each track (proves keys + bytes fit)
    ramp: float = 10.0           # viewers click at moments spread evenly over this many seconds


@dataclass
class Tally:
    slots: int = 0
    stalls: int = 0
    stalled_viewers: int = 0
    worst_late_s: float = -1e9      # the latest slot's lateness (negative: its margin)
    errors: dict = field(default_factory=dict)
    requests: dict = field(default_factory=dict)
    bytes: dict = field(default_factory=dict)
    key_app_ms: list = field(default_factory=list)       # Server-Timing app;dur of key responses
    key_latency_ms: list = field(default_factory=list)
    pace_refusals: int = 0
    decrypted: int = 0
    media_seconds: float = 0.0    # media played (slots x segment duration): the viewer-minutes
    # Where stalls fall: per slot index (a flash crowd's stalls at slot 0 are slow starts, not
    # a server that cannot keep up), and each viewer's start (click to manifest and init done).
    stalls_by_slot: dict = field(default_factory=dict)
    startup_s: list = field(default_factory=list)
    startup_parts_s: dict = field(default_factory=dict)     # manifest / init response times within a start

    def count(self, what: str, r: Response | None) -> None:
        self.requests[what] = self.requests.get(what, 0) + 1
        if r is not None:
            self.bytes[what] = self.bytes.get(what, 0) + r.size

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def merge(self, o: "Tally") -> None:
        for name in ("slots", "stalls", "stalled_viewers", "pace_refusals", "decrypted", "media_seconds"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        self.worst_late_s = max(self.worst_late_s, o.worst_late_s)
        for name in ("errors", "requests", "bytes"):
            mine = getattr(self, name)
            for k, v in getattr(o, name).items():
                mine[k] = mine.get(k, 0) + v
        self.key_app_ms += o.key_app_ms
        self.key_latency_ms += o.key_latency_ms
        self.startup_s += o.startup_s
        for k, v in o.startup_parts_s.items():
            self.startup_parts_s.setdefault(k, []).extend(v)
        for k, v in o.stalls_by_slot.items():
            self.stalls_by_slot[k] = self.stalls_by_slot.get(k, 0) + v


class Viewer:
    def __init__(self, plan: Plan, tally: Tally, media_base: str | None = None):
        self.plan, self.t = plan, tally
        # One keep-alive connection, as a tab mostly uses for one origin. A second one for the
        # API calls (so a key request never queues behind a segment) was tried: on this 2-core
        # machine it made the load generator itself the bottleneck (loop lag p99 0.36-0.56 s,
        # machine busy 1.54 cores vs 0.78, stalls from 500 viewers where one connection held 0;
        # same stack, same run conditions, 2026-12-02).
        self.conn = Conn(media_base or plan.gateway)
        self.lock = asyncio.Lock()
        self.device: DeviceKey | None = None            # made with the first device token
        self.bearer: str | None = None                  # account token, to renew the device token
        self.token = self.token_at = self.sid = None
        self.keys: dict[tuple[str, int], bytes] = {}      # (track, slot) -> segment key
        self.inflight: dict[str, asyncio.Task] = {}
        self.runs: dict[str, tuple[int, int]] = {}      # track -> (next index, step) of its key run
        self.paths: dict[str, list[str]] = {}
        self.init_paths: list[str] = []

    @classmethod
    def static(cls, plan: Plan, tally: Tally, base: str, paths: dict[str, list[str]], inits: list[str]) -> "Viewer":
        v = cls(plan, tally, base)
        v.paths, v.init_paths = paths, inits
        return v

    # ---- API calls (one at a time on the connection) -----------------------------------------
    async def call(self, what: str, method: str, path: str, body: dict | None = None, bearer: str | None = None,
                   ok=(200, 201, 204)) -> Response:
        url = self.plan.gateway + path
        for attempt in (0, 1):
            if bearer:
                headers = {"Authorization": f"Bearer {bearer}", "DPoP": self.device.proof(method, url)}
            else:
                headers = {"Authorization": f"DPoP {self.token}", "DPoP": self.device.proof(method, url, self.token)}
            raw = b""
            if body is not None:
                raw, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
            async with self.lock:
                r = await self.conn.request(method, path, headers, raw)
            self.t.count(what, r)
            # The device token expired (ACCESS_TOKEN_TTL): renew it, as the player does, and retry.
            if r.status == 401 and not bearer and not attempt and self.bearer:
                self.t.count("token_renewed", None)
                await self.device_token(self.bearer)
                continue
            break
        if r.status not in ok:
            self.t.error(f"{what} {r.status}")
            raise RuntimeError(f"{method} {path} -> {r.status} {r.body[:200]!r}")
        return r

    async def get(self, what: str, path: str, keep: bool = False) -> Response:
        async with self.lock:
            r = await self.conn.request("GET", path, keep=keep)
        self.t.count(what, r)
        return r

    async def device_token(self, bearer: str) -> None:
        self.device = self.device or DeviceKey()
        r = await self.call("device_token", "POST", "/api/auth/device-token", {"fingerprint": FINGERPRINT},
                            bearer=bearer)
        self.token, self.token_at = json.loads(r.body)["access_token"], time.monotonic()

    async def open(self) -> None:
        eph, jwk = ephemeral_key()
        r = await self.call("session_open", "POST", "/api/stream/sessions",
                            {"video_id": self.plan.video_id, "client_public_key": jwk})
        body = json.loads(r.body)
        self.sid = sid = body["session_id"]
        self.kek = session_kek(eph, sid, body["server_public_key"])
        self.ceks = {body["key_epoch"]: unwrap_cek(self.kek, sid, body["wrapped_cek"])}
        self.epoch, self.manifest = body["key_epoch"], body["manifest_url"]
        self.hb_interval = body["heartbeat_interval"]
        first = body.get("keys") or {}
        for track in ("video", "audio"):
            self._store(track, 0, first.get("key_epoch", self.epoch), first.get(track, []))
            if first.get(track):     # a run that plays on (player.js openSession)
                self.runs[track] = (len(first[track]), len(self.plan.key_run) - 2)

    async def end(self) -> None:
        await self.call("session_end", "DELETE", f"/api/stream/sessions/{self.sid}")
        self.close()

    def close(self) -> None:
        self.conn.close()

    # ---- keys ------------------------------------------------------------------------------------
    def _store(self, track: str, first_slot: int, epoch: int, entries: list[dict]) -> None:
        base = first_slot - (int(entries[0]["index"]) if entries else 0)
        for e in entries:
            self.keys[(track, base + int(e["index"]))] = unwrap_segment_key(self.ceks[epoch], self.sid, track, e)

    async def fetch_keys(self, track: str, slot: int) -> None:
        nseg = len(self.paths[track])
        index = slot % nseg
        body = {"track": track, "from": index, "count": min(self.run_length(track, index), nseg - index),
                "key_epoch": self.epoch}
        while True:
            t0 = time.perf_counter()
            r = await self.call("keys", "POST", f"/api/stream/sessions/{self.sid}/keys", body, ok=(200, 429))
            if r.status == 200:
                break
            self.t.pace_refusals += 1
            await asyncio.sleep(int(r.headers.get("retry-after", "1")))
        self.t.key_latency_ms.append((time.perf_counter() - t0) * 1000)
        timing = r.headers.get("server-timing", "")
        if "app;dur=" in timing:
            self.t.key_app_ms.append(float(timing.split("app;dur=")[1].split(",")[0]))
        out = json.loads(r.body)
        if out["key_epoch"] not in self.ceks:          # rotated: the heartbeat brings the new CEK
            await self.heartbeat(0.0)
        self._store(track, slot, out["key_epoch"], out["keys"])

    def run_length(self, track: str, index: int) -> int:
        """player.js runLength: the next step of the track's run when this request continues it,
        else a new run (the start after the session's first keys; here also the clip's loop)."""
        run, steps = self.runs.get(track), self.plan.key_run
        step = min(run[1] + 1, len(steps) - 1) if run and run[0] == index else 0
        self.runs[track] = (index + steps[step], step)
        return steps[step]

    def want_keys(self, track: str, slot: int) -> asyncio.Task | None:
        """The task that brings the key of ``slot`` (started if none is under way)."""
        if (track, slot) in self.keys:
            return None
        task = self.inflight.get(track)
        if task is None or task.done():
            task = self.inflight[track] = asyncio.create_task(self.fetch_keys(track, slot))
        return task

    async def heartbeat(self, position: float) -> None:
        r = await self.call("heartbeat", "POST", f"/api/stream/sessions/{self.sid}/heartbeat", {"position": position})
        body = json.loads(r.body)
        if body.get("wrapped_cek"):
            self.ceks[body["key_epoch"]] = unwrap_cek(self.kek, self.sid, body["wrapped_cek"])
        self.epoch = body["key_epoch"]

    async def heartbeats(self, start: float) -> None:
        while True:
            await asyncio.sleep(self.hb_interval)
            try:
                await self.heartbeat(round(time.perf_counter() - start, 1))
            except Exception:
                self.t.error("heartbeat")

    # ---- playback --------------------------------------------------------------------------------
    async def startup(self) -> None:
        """Manifest and init segments (gateway mode), right after the click."""
        if self.sid is None:
            for p in self.init_paths:
                await self.get("init", p)
            return
        t0 = time.perf_counter()
        r = await self.get("manifest", self.manifest, keep=True)
        t1 = time.perf_counter()
        reps = parse_mpd(r.body.decode(), self.plan.gateway + self.manifest)
        self._part("manifest", t1 - t0)
        self._part("manifest_parse", time.perf_counter() - t1)
        video = next(x for x in reps if x.id == self.plan.rendition)
        chosen = [video] + ([next(x for x in reps if x.kind == "audio")] if self.plan.audio else [])
        for rep in chosen:
            track = track_of(parse_segment_url(rep.segment_urls[0])[1])
            self.paths[track] = [_path(u) for u in rep.segment_urls]
            t0 = time.perf_counter()
            init = await self.get("init", _path(rep.init_url))
            self._part("init", time.perf_counter() - t0)
            if init.status != 200:
                raise RuntimeError(f"init {init.status}")

    def _part(self, name: str, seconds: float) -> None:
        self.t.startup_parts_s.setdefault(name, []).append(seconds)

    async def play(self, start: float) -> None:
        """Click at ``start`` (perf_counter); slot k is due at start + startup + k x seg."""
        p, t = self.plan, self.t
        stalled, hb = False, None
        try:
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
            await self.startup()
            t.startup_s.append(time.perf_counter() - start)
            if self.sid:
                hb = asyncio.create_task(self.heartbeats(start))
            for k in range(p.slots):
                await asyncio.sleep(max(0.0, start + p.startup + (k - p.ahead) * p.seg_seconds - time.perf_counter()))
                ok = await self.slot(k)
                late = time.perf_counter() - (start + p.startup + k * p.seg_seconds)
                t.slots += 1
                t.media_seconds += p.seg_seconds
                t.worst_late_s = max(t.worst_late_s, late)
                if not ok or late > 0:
                    t.stalls += 1
                    t.stalls_by_slot[k] = t.stalls_by_slot.get(k, 0) + 1
                    stalled = True
            # Still watching until the buffer runs out (heartbeats go on meanwhile).
            await asyncio.sleep(max(0.0, start + p.startup + p.slots * p.seg_seconds - time.perf_counter()))
        except Exception as e:
            t.error(f"viewer {type(e).__name__}")
            stalled = True
        finally:
            if hb:
                hb.cancel()
        t.stalled_viewers += stalled

    async def slot(self, k: int) -> bool:
        ok = True
        for track, paths in self.paths.items():
            index = k % len(paths)
            if self.sid:
                for j in range(k + 1, min(k + 1 + self.plan.key_prefetch, self.plan.slots)):
                    if (track, j) not in self.keys:           # one request from the first missing one
                        self.want_keys(track, j)
                        break
                for _ in range(3):                      # a missing key: ask (or wait for the request under way)
                    if (track, k) in self.keys:
                        break
                    await self.want_keys(track, k)
                if (track, k) not in self.keys:
                    raise RuntimeError(f"no {track} key for segment slot {k}")
            keep = self.sid is not None and self.plan.decrypt_first and k == 0
            r = await self.get(MEDIA, paths[index], keep=keep)
            if r.status != 200:
                self.t.error(f"media {r.status}")
                ok = False
            elif keep:
                _, rendition, _ = parse_segment_url(paths[index])
                decrypt_segment(self.keys[(track, k)], self.plan.video_id, rendition, index, r.body)
                self.t.decrypted += 1
        return ok


def _path(url: str) -> str:
    from urllib.parse import urlsplit
    return urlsplit(url).path
