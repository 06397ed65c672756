"""The benchmarks' load generator: a lean HTTP/1.1 keep-alive client on asyncio protocols
(no third-party client: requests + threads would measure the client, not the server; the
protocol counts media bytes as they arrive and keeps no copy unless asked), a closed loop
spread over several processes so the generator is not the limit on 2 cores (reporting its
own CPU), and the anchor: a throwaway nginx serving plaintext files statically."""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SPAWN = multiprocessing.get_context("spawn")      # children start clean (no inherited sockets, DB handles)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes          # b"" unless the caller kept it
    size: int            # body bytes received


class _Proto(asyncio.Protocol):
    """One TCP connection, one request at a time; the body is counted and, if asked, kept."""

    def __init__(self):
        self.transport, self.fut, self.closed = None, None, False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("connection closed"))

    def expect(self, fut, keep: bool, head_only: bool) -> None:
        self.fut, self.keep, self.head_only = fut, keep, head_only
        self.head, self.parts, self.size, self.length, self.chunked, self.status = bytearray(), [], 0, 0, False, 0

    def data_received(self, data):
        if self.fut is None or self.fut.done():
            return
        if self.status == 0:
            # The head usually arrives whole at the start of the first chunk: find it without
            # copying the chunk (up to 256 kB of body behind it).
            if self.head:
                self.head += data
                data = bytes(self.head)
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.head = bytearray(data)
                return
            lines = data[:end].decode("latin-1").split("\r\n")
            data = memoryview(data)[end + 4:]
            self.status = int(lines[0].split()[1])
            self.headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
            no_body = self.head_only or self.status in (204, 304)
            self.length = 0 if no_body else int(self.headers.get("content-length", "0"))
            if no_body:
                self.chunked = False
        self.size += len(data)
        if self.keep or self.chunked:
            self.parts.append(bytes(data))
        if self.chunked:
            if not b"".join(self.parts[-2:]).endswith(b"0\r\n\r\n"):
                return
            body = _dechunk(b"".join(self.parts))
            self.size = len(body)
        elif self.size < self.length:
            return
        else:
            body = b"".join(self.parts) if self.keep else b""
        self.fut.set_result(Response(self.status, self.headers, body if self.keep else b"", self.size))
        if self.headers.get("connection", "").lower() == "close":
            self.transport.close()


def _dechunk(raw: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        eol = raw.index(b"\r\n", pos)
        n = int(raw[pos:eol].split(b";")[0], 16)
        if n == 0:
            return bytes(out)
        out += raw[eol + 2:eol + 2 + n]
        pos = eol + 2 + n + 2


class Conn:
    """A keep-alive connection to one origin (reconnects when the server closed it)."""

    def __init__(self, base: str):
        u = urlsplit(base)
        self.host, self.port, self.proto = u.hostname, u.port, None

    async def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b"",
                      keep: bool = True, timeout: float = 30.0) -> Response:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if body:
            extra += f"Content-Length: {len(body)}\r\n"
        raw = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}\r\n".encode() + body
        # A keep-alive connection the server just closed fails at once: retry GETs once on a
        # fresh one (never a POST: its DPoP proof is single-use).
        for attempt in (0, 1):
            loop = asyncio.get_running_loop()
            if self.proto is None or self.proto.closed:
                _, self.proto = await asyncio.wait_for(loop.create_connection(_Proto, self.host, self.port), timeout)
            fut = loop.create_future()
            self.proto.expect(fut, keep, method == "HEAD")
            self.proto.transport.write(raw)
            try:
                return await asyncio.wait_for(fut, timeout)
            except (ConnectionError, asyncio.TimeoutError):
                self.close()
                if attempt or method != "GET":
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.proto is not None:
            self.proto.transport.close()
            self.proto = None


# ---- closed loop (P1) --------------------------------------------------------------------------
@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    bytes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    def merge(self, other: "Tally", sequential: bool = False) -> None:
        """Another process's share of the same run, or (``sequential``) a later run."""
        self.requests += other.requests
        self.errors += other.errors
        self.bytes += other.bytes
        self.seconds = self.seconds + other.seconds if sequential else max(self.seconds, other.seconds)
        self.cpu_seconds += other.cpu_seconds
        self.latencies += other.latencies
        for k, v in other.cache.items():
            self.cache[k] = self.cache.get(k, 0) + v

    def summary(self) -> dict:
        lat = sorted(self.latencies) or [0.0]
        s = self.seconds or 1e-9
        return {"requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 2),
                "req_per_s": round(self.requests / s, 1), "mb_per_s": round(self.bytes / s / 1e6, 1),
                "p50_ms": round(quantile(lat, 0.5) * 1000, 2), "p99_ms": round(quantile(lat, 0.99) * 1000, 2),
                "mean_ms": round(statistics.fmean(lat) * 1000, 2), "x_cache_status": self.cache,
                "loadgen_cpu_cores": round(self.cpu_seconds / s, 2)}


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def gateway_request_ms(log: Path, offset: int) -> dict:
    """The gateway's own time per request ($request_time in its JSON access log, from byte
    ``offset`` on), by kind of request a viewer sends: what the server side took, to set beside
    what the load generator saw (a start slow only on the generator's side is its limit)."""
    times: dict[str, list[float]] = {}
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            times.setdefault(_request_kind(rec.get("method", ""), rec.get("uri", "")), []).append(
                float(rec.get("seconds", 0)))
    return {kind: {"n": len(v), "p50": round(quantile(v, 0.5) * 1000, 1), "p99": round(quantile(v, 0.99) * 1000, 1),
                   "max": round(max(v) * 1000, 1)} for kind, v in sorted(times.items())}


def _request_kind(method: str, uri: str) -> str:
    if uri.startswith("/media/"):
        return "media"
    if uri.startswith("/api/stream/m/"):
        return "manifest" if uri.endswith((".mpd", ".m3u8")) else "init"
    if uri.startswith("/api/stream/sessions"):
        tail = uri.rstrip("/").rsplit("/", 1)[-1]
        return tail if tail in ("keys", "heartbeat") else f"session {method}"
    return "other"


async def _closed(base: str, paths: list[str], first: int, step: int, workers: int, seconds: float) -> Tally:
    t, stop = Tally(), time.perf_counter() + seconds

    async def worker(n: int):
        conn, i = Conn(base), first + n * step
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += workers * step
            t0 = time.perf_counter()
            try:
                r = await conn.request("GET", path, keep=False)
            except Exception:
                t.errors += 1
                continue
            if r.status != 200:
                t.errors += 1
                continue
            t.latencies.append(time.perf_counter() - t0)
            t.requests += 1
            t.bytes += r.size
            c = r.headers.get("x-cache-status", "-")
            t.cache[c] = t.cache.get(c, 0) + 1
        conn.close()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    t.seconds, t.cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    return t


def _closed_child(args, out):
    out.put(asyncio.run(_closed(*args)))


def closed_loop(base: str, paths: list[str], concurrency: int, seconds: float, processes: int = 2) -> Tally:
    """``concurrency`` keep-alive clients, spread over ``processes``, each fetching back to back."""
    q, kids = SPAWN.Queue(), []
    for p in range(processes):
        share = concurrency // processes + (p < concurrency % processes)
        kids.append(SPAWN.Process(target=_closed_child, args=((base, paths, p, processes, share, seconds), q)))
    for k in kids:
        k.start()
    total = Tally()
    for _ in kids:
        total.merge(q.get(timeout=seconds + 120))
    for k in kids:
        k.join(30)
    return total


# ---- the anchor ----------------------------------------------------------------------------------
class StaticNginx:
    """nginx serving ``root`` on a loopback port, private pid/logs/temp in a temp dir."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.dir = Path(tempfile.mkdtemp(prefix="sv-bench-nginx-"))
        self.proc = None

    def __enter__(self):
        conf = self.dir / "nginx.conf"
        user = "user root root;" if os.geteuid() == 0 else ""    # else workers run as nobody: no access
        conf.write_text(f"""
{user}
worker_processes auto;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
daemon off;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    # The gateway's TCP settings (sendfile, nodelay). Not tcp_nopush: on loopback it halved
    # this anchor's requests per second (1.7-2.3k vs 3.3-3.9k, 16 clients, 0.7 MB files).
    sendfile on; tcp_nodelay on; keepalive_requests 100000;
    client_body_temp_path {self.dir}/body; proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fcgi; uwsgi_temp_path {self.dir}/uwsgi; scgi_temp_path {self.dir}/scgi;
    server {{ listen 127.0.0.1:{self.port}; root {self.root}; }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(self.dir)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("static nginx did not start")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
