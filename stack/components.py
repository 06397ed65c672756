"""Command lines and one-time preparation for MariaDB, SeaweedFS and nginx."""
from __future__ import annotations

import ipaddress
import json
import re
import os
import time
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from .layout import ROOT, Stack


def venv_bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60, verify: str | bool = True) -> None:
    """Wait until ``url`` answers below 500 (the launcher, the test fixtures and benchmarks
    all start services this way); fail early if the process we wait for has exited.
    ``verify``: an https URL's CA file (a test's self-signed certificate)."""
    import requests
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1, verify=verify).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


# ---- MariaDB ---------------------------------------------------------------------------
def stop_child(proc: subprocess.Popen, grace: float = 15) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def busy_ports(stack: Stack, ours: set[int] = frozenset(), wait: float = 10) -> list[str]:
    """The stack's ports another program listens on (still, after up to ``wait`` seconds: a
    program that is just exiting frees its port), each said with that program's name and pid.
    Without this check a busy port went unnoticed: a service whose port was taken restarted for
    ever, and the services waiting on a port (MariaDB's, S3's) took the other program for ours.
    ``ours``: process groups of this stack's previous run, whose leftovers are stopped before
    each program starts (supervision.stop_leftovers), so not in the way."""
    deadline = time.monotonic() + wait
    while (busy := _busy_ports(stack, ours)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return busy


def _busy_ports(stack: Stack, ours: set[int]) -> list[str]:
    busy = []
    for port, program in sorted(stack.listeners().items()):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the servers bind: TIME_WAIT is no clash
            try:
                s.bind(("127.0.0.1", port))
                continue
            except OSError:
                pass
        holder = _listener(port)
        if holder is None and _closing(port):
            # An outgoing connection's port, closed but kept a minute (TIME-WAIT): only a port in
            # the range the system picks those from, i.e. an offset that puts the stack there.
            busy.append(f"127.0.0.1:{port}, {program}'s port, is held by closed connections for up to a "
                        "minute (TIME-WAIT): it lies in the system's range for outgoing ports "
                        f"({_ephemeral_range()}); use an offset that keeps the stack's ports below it")
        elif holder is None:
            busy.append(f"127.0.0.1:{port}, {program}'s port, is taken by another program")
        elif holder.pgid not in ours:
            left = str(stack.var) in holder.command                  # its data folder is ours
            busy.append(f"127.0.0.1:{port}, {program}'s port, is taken by {holder.name} (pid {holder.pid})"
                        + (f", left running by an earlier run of this stack: `kill {holder.pid}`" if left else ""))
    return busy


@dataclass(frozen=True)
class Listener:
    name: str
    pid: int
    pgid: int
    command: str


def _listener(port: int) -> Listener | None:
    """The process listening on TCP ``port``, read once (it may exit meanwhile), if this user may see it."""
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                proc = psutil.Process(conn.pid)
                # An nginx worker holds the socket; its master's command line names the folder.
                commands = [" ".join(p.cmdline()) for p in (proc, proc.parent()) if p is not None]
                return Listener(proc.name(), conn.pid, os.getpgid(conn.pid), " ".join(commands))
    except (psutil.Error, OSError):
        pass
    return None


def _closing(port: int) -> bool:
    """Some TCP connection from local ``port`` is in TIME-WAIT (it blocks a bind even with
    SO_REUSEADDR, as the client that made it did not set it)."""
    try:
        return any(c.status == psutil.CONN_TIME_WAIT and c.laddr and c.laddr.port == port
                   for c in psutil.net_connections("tcp"))
    except (psutil.Error, OSError):
        return False


def _ephemeral_range() -> str:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return f"{low}-{high}"
    except (OSError, ValueError):
        return "32768-60999"


def mariadb_prepare(stack: Stack) -> None:
    datadir = stack.var / "mariadb"
    if (datadir / "mysql").is_dir():
        return  # second `make up`: reuse the data
    datadir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db", f"--tmpdir={mariadb_tmpdir(stack)}"],
                   check=True, stdout=subprocess.DEVNULL)


def mariadb_tmpdir(stack: Stack) -> Path:
    """A temporary directory of the instance's own: with the shared /tmp, two instances
    bootstrapping at once (test workers) once failed on each other's temporary tables."""
    path = stack.var / "mariadb-tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def mariadb_command(stack: Stack) -> list[str]:
    return ["mariadbd", "--no-defaults", f"--datadir={stack.var / 'mariadb'}", f"--socket={stack.mariadb_socket}",
            f"--port={stack.mariadb_port}", "--bind-address=127.0.0.1", "--user=root",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
            f"--pid-file={stack.var / 'mariadb.pid'}", f"--tmpdir={mariadb_tmpdir(stack)}",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=500", "--log-error=" + str(stack.var / "logs" / "mariadb.err"),
            # The native stack is for development, tests and benchmarks: a commit is written
            # to the OS at once and flushed to disk once a second, so only an OS crash (not a
            # MariaDB or service crash) could lose the last second. Compose keeps full
            # durability (docs/operations.md).
            "--innodb-flush-log-at-trx-commit=2"]


# ---- SeaweedFS (real S3 server) -------------------------------------------------------
def seaweed_prepare(stack: Stack, secrets: dict) -> Path:
    (stack.var / "seaweed").mkdir(parents=True, exist_ok=True)
    conf = stack.var / "s3-identities.json"
    # With identities configured SeaweedFS refuses anonymous S3 requests (403).
    conf.write_text(json.dumps({"identities": [{
        "name": "streamvault",
        "credentials": [{"accessKey": secrets["S3_ACCESS_KEY"], "secretKey": secrets["S3_SECRET_KEY"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    conf.chmod(0o600)
    return conf


def seaweed_command(stack: Stack) -> list[str]:
    p = stack.weed_port
    return [venv_bin("weed"), "server", f"-dir={stack.var / 'seaweed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p('master')}", f"-master.port.grpc={p('master_grpc')}",
            f"-volume.port={p('volume')}", f"-volume.port.grpc={p('volume_grpc')}",
            f"-filer.port={p('filer')}", f"-filer.port.grpc={p('filer_grpc')}",
            f"-filer.localSocket={stack.var / 'filer.sock'}",
            "-s3", f"-s3.port={p('s3')}", f"-s3.port.grpc={p('s3_grpc')}",
            f"-s3.config={stack.var / 's3-identities.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-metricsPort={p('metrics')}", "-master.telemetry=false",
            "-volume.max=0", "-master.volumeSizeLimitMB=1024"]


# ---- nginx gateway ----------------------------------------------------------------------
GiB = 1024 ** 3
FORM_OVERHEAD = 64 * 1024   # svcommon.bodylimit.FORM_OVERHEAD: multipart envelope around a file


def _env_int(env: dict, name: str, default: int) -> int:
    value = str(env.get(name) or "")      # ASCII digits only: "²".isdigit() holds, int("²") raises
    return int(value) if re.fullmatch(r"[0-9]+", value) else default


def gateway_body_limits(env: dict) -> dict[str, str]:
    """The gateway's per-location body limits, from the same settings the services read
    (gateway/entrypoint.sh computes the same under compose)."""
    return {"BODY_MAX": str(_env_int(env, "BODY_MAX_BYTES", 64 * 1024)),
            "UPLOAD_BODY_MAX": str(_env_int(env, "UPLOAD_MAX_BYTES", 20 * GiB) + FORM_OVERHEAD),
            "CAPTION_BODY_MAX": str(_env_int(env, "CAPTION_MAX_BYTES", 512 * 1024) + FORM_OVERHEAD),
            "FORENSICS_BODY_MAX": str(_env_int(env, "FORENSICS_MAX_UPLOAD_BYTES", 16 * GiB) + FORM_OVERHEAD)}


def gateway_media_cache(env: dict, directory: str) -> dict[str, str]:
    """Where and how much the gateway caches /media/ (gateway/entrypoint.sh: the same)."""
    def size(name: str, default: str, unit: str) -> str:
        value = str(env.get(name) or "")
        return value if re.fullmatch(r"[0-9]+[" + unit + "]?", value) else default
    return {"MEDIA_CACHE_DIR": directory,
            "MEDIA_CACHE_MAX_SIZE": size("GATEWAY_MEDIA_CACHE_MAX_SIZE", "10g", "kmg"),
            "MEDIA_CACHE_INACTIVE": size("GATEWAY_MEDIA_CACHE_INACTIVE", "7d", "smhd")}


def gateway_trusted_proxies(env: dict) -> dict[str, str]:
    """GATEWAY_TRUSTED_PROXIES (addresses or networks of a load balancer in front, separated by
    spaces or commas) as the template's realip directives and geo entries (gateway/entrypoint.sh
    renders the same). A value that is not an address or a network stops the start."""
    entries = [e for e in re.split(r"[\s,]+", str(env.get("GATEWAY_TRUSTED_PROXIES") or "")) if e]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
    realip = "".join(f"set_real_ip_from {e};\n    " for e in entries)
    if entries:
        realip += "real_ip_header X-Forwarded-For;\n    real_ip_recursive on;"
    return {"TRUSTED_PROXIES": realip, "TRUSTED_PROXY_GEO": "".join(f"{e} 1; " for e in entries)}


def tls_block(cert: str, key: str) -> str:
    """Server directives for HTTPS (the same text gateway/entrypoint.sh renders)."""
    return (f"ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_prefer_server_ciphers off;\n"
            "        ssl_session_cache shared:sv_tls:10m;\n        ssl_session_tickets off;")


def redirect_server(listen: str, origin: str) -> str:
    """Plain HTTP listener that only sends clients to the HTTPS origin (same path); it also
    answers the gateway's health check, which probes plain HTTP."""
    return ("server {\n        listen " + listen + ";\n"
            '        location = /gateway/healthz { access_log off; return 200 "ok\\n"; }\n'
            "        location / { return 308 " + origin + "$request_uri; }\n    }")


def nginx_prepare(stack: Stack, env: dict | None = None, tls: tuple[str, str] | None = None,
                  http_redirect_port: int | None = None, folder: str = "nginx", port: int | None = None) -> Path:
    """Render the gateway config into ``<var>/<folder>``. ``tls=(cert, key)`` serves HTTPS on
    the gateway port (``port`` overrides it) and, with ``http_redirect_port``, redirects
    plain HTTP there; default plain HTTP."""
    base = stack.var / folder
    port = port or stack.gateway_port
    for sub in ("logs", "tmp", "cache"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    template = (ROOT / "gateway" / "nginx.conf.template").read_text()
    upstreams = "\n".join(
        f"upstream {name}_svc {{ server 127.0.0.1:{stack.port(name)}; keepalive 16; keepalive_timeout 60s; }}"
        for name in ("auth", "upload", "streaming", "watermark"))
    values = {"UPSTREAMS": upstreams, "RESOLVER": "", "USER": "user root;" if os.geteuid() == 0 else "",
              "TMP": str(base / "tmp"), "PID": str(base / "nginx.pid"),
              "ACCESS_LOG": str(base / "logs" / "access.log"),
              "LISTEN": f"127.0.0.1:{port}" + (" ssl" if tls else ""),
              "TLS": tls_block(*tls) if tls else "",
              "HTTP_REDIRECT": (redirect_server(f"127.0.0.1:{http_redirect_port}", f"https://127.0.0.1:{port}")
                                if tls and http_redirect_port else ""),
              **gateway_body_limits(env or {}), **gateway_media_cache(env or {}, str(base / "cache")),
              **gateway_trusted_proxies(env or {})}
    conf = template
    for name, value in values.items():
        conf = conf.replace("{{" + name + "}}", value)
    if "{{" in conf:
        raise RuntimeError("gateway template: unrendered placeholder")
    path = base / "nginx.conf"
    path.write_text(conf)
    return path


def nginx_command(stack: Stack, folder: str = "nginx") -> list[str]:
    base = stack.var / folder
    return ["nginx", "-p", str(base), "-c", str(base / "nginx.conf"), "-e", str(base / "logs" / "error.log"),
            "-g", "daemon off;"]
