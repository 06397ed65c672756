"""A small HTTP/1.1 keep-alive load generator on asyncio streams (no third-party client:
requests+threads would measure the client, not the server) and a throwaway nginx that
serves plaintext files statically — the anchor P1 compares encrypted delivery against."""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    bytes: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_timing: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        lat = sorted(self.latencies) or [0.0]
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        return {"requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 2),
                "req_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0,
                "mb_per_s": round(self.bytes / self.seconds / 1e6, 1) if self.seconds else 0,
                "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2),
                "mean_ms": round(statistics.fmean(lat) * 1000, 2)}


class Conn:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}\r\n".encode())
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                self.writer = None
                if attempt:
                    raise
                continue
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            if hdrs.get("transfer-encoding") == "chunked":
                body = bytearray()
                while True:
                    size = int((await self.reader.readline()).strip(), 16)
                    if size == 0:
                        await self.reader.readline()
                        break
                    body += await self.reader.readexactly(size)
                    await self.reader.readline()
                body = bytes(body)
            else:
                body = await self.reader.readexactly(int(hdrs.get("content-length", "0")))
            if hdrs.get("connection", "").lower() == "close":
                self.writer.close()
                self.writer = None
            return status, hdrs, body
        raise RuntimeError("unreachable")

    def close(self):
        if self.writer is not None:
            self.writer.close()


async def _closed_loop(base: str, paths: list[str], concurrency: int, seconds: float, result: Result,
                       keep_timing: bool) -> None:
    u = urlsplit(base)
    stop = time.perf_counter() + seconds

    async def worker(n: int):
        conn = Conn(u.hostname, u.port)
        i = n
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += concurrency
            t0 = time.perf_counter()
            try:
                status, hdrs, body = await conn.get(path)
            except Exception:
                result.errors += 1
                conn = Conn(u.hostname, u.port)
                continue
            dt = time.perf_counter() - t0
            if status != 200:
                result.errors += 1
                continue
            result.requests += 1
            result.bytes += len(body)
            result.latencies.append(dt)
            if keep_timing and "server-timing" in hdrs:
                result.server_timing.append(_timing(hdrs["server-timing"]))
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    result.seconds = time.perf_counter() - t0


def _timing(value: str) -> dict:
    out = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";dur=")
        out[name] = float(rest)
    return out


def closed_loop(base: str, paths: list[str], concurrency: int, seconds: float, keep_timing: bool = False) -> Result:
    """``concurrency`` clients each fetching back to back for ``seconds``."""
    result = Result()
    asyncio.run(_closed_loop(base, paths, concurrency, seconds, result, keep_timing))
    return result


async def _viewers(base: str, viewers: list[list[str]], seg_seconds: float, startup: float, ahead: int) -> dict:
    """Each viewer plays in real time: segment i is requested once the buffer holds fewer
    than ``ahead`` segments and must arrive before its playback time (start + startup +
    i * seg_seconds) — otherwise the viewer stalls."""
    u = urlsplit(base)
    stalls, late_by, done = 0, [], 0

    async def viewer(paths: list[str], offset: float):
        nonlocal stalls, done
        await asyncio.sleep(offset)
        conn = Conn(u.hostname, u.port)
        start = time.perf_counter()
        for i, path in enumerate(paths):
            earliest = start + (i - ahead) * seg_seconds + startup
            wait = earliest - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                status, _, _ = await conn.get(path)
            except Exception:
                status = 0
                conn = Conn(u.hostname, u.port)
            deadline = start + startup + i * seg_seconds
            now = time.perf_counter()
            if status != 200 or now > deadline:
                stalls += 1
                late_by.append(now - deadline)
        done += 1
        conn.close()

    n = len(viewers)
    await asyncio.gather(*(viewer(p, seg_seconds * k / n) for k, p in enumerate(viewers)))
    return {"viewers": n, "stalls": stalls, "worst_late_s": round(max(late_by), 3) if late_by else 0.0}


def realtime_viewers(base: str, viewers: list[list[str]], seg_seconds: float = 2.0, startup: float = 2.0,
                     ahead: int = 2) -> dict:
    return asyncio.run(_viewers(base, viewers, seg_seconds, startup, ahead))


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
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 100000;
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
                import socket
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


def machine() -> dict:
    return {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
