"""Helpers for the ingest tests (upload-svc, file-svc, end to end): users, generated test
media (ffmpeg lavfi, in tmp dirs, never committed), tus calls, and direct looks into S3 and
MariaDB to prove nothing was left behind."""
from __future__ import annotations

import base64
import re
import subprocess
import uuid
from pathlib import Path

import boto3
import mysql.connector
import requests
from botocore.config import Config

TUS = {"Tus-Resumable": "1.0.0"}


# ---- users -------------------------------------------------------------------------------
def new_user(base_url: str, prefix: str = "up") -> dict:
    """Register and log in a fresh user through the gateway; returns {id, username, token, headers}."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    pw = "correct horse battery"
    r = requests.post(f"{base_url}/api/auth/register", json={"username": name, "email": f"{name}@example.test",
                                                             "password": pw}, timeout=10)
    assert r.status_code == 201, r.text
    return login(base_url, name, pw)


def login(base_url: str, name: str, pw: str) -> dict:
    """Log in through the gateway (again after a role change: the token carries the role)."""
    r = requests.post(f"{base_url}/api/auth/login", json={"username": name, "password": pw}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    return {"id": body["user"]["id"], "username": name, "password": pw, "token": body["access_token"],
            "headers": {"Authorization": f"Bearer {body['access_token']}"}}


def set_role(env: dict, user_id: str, role: str) -> None:
    with db_conn(env) as conn:
        cur = conn.cursor()
        cur.execute("UPDATE users SET role = %s WHERE id = %s", (role, user_id))
        conn.commit()


# ---- media -------------------------------------------------------------------------------
def make_video(path: Path, seconds: float = 2, size: str = "320x240", extra: list[str] | None = None) -> Path:
    """A small real H.264/AAC mp4 from ffmpeg's test sources."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", *(extra or []),
                    str(path)], check=True)
    return path


def post_video(base_url: str, headers: dict, path: Path, filename: str, title: str):
    """A one-request (curl-style) multipart upload of a private video: the response."""
    with open(path, "rb") as f:
        return requests.post(f"{base_url}/api/videos", headers=headers, files={"file": (filename, f)},
                             data={"title": title, "visibility": "private"}, timeout=60)


def make_noise_video(path: Path, seconds: float, size: str = "1280x720") -> Path:
    """Incompressible-ish video (random noise), for files of a given size quickly."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"nullsrc=size={size}:rate=25:duration={seconds}",
                    "-vf", "geq=random(1)*255:128:128", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


# An MP4's first box: bytes that pass upload-svc's check of a file's first 4 KiB (a test
# of something else, the size or the quota, sends it ahead of its filler).
MP4_HEAD = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"


def pad_video(src: Path, dst: Path, total_bytes: int) -> Path:
    """A valid mp4 made big: the source followed by junk up to total_bytes (demuxers stop at
    the last box they know; ffprobe still reads it as the source video)."""
    with open(dst, "wb") as out, open(src, "rb") as inp:
        out.write(inp.read())
        block = b"\0" * (8 * 1024 * 1024)
        left = total_bytes - out.tell()
        # one 'free' box announcing the padding keeps the file a well-formed ISO BMFF (past
        # 4 GiB with a 64-bit size: size field 1, then the size after the type)
        if left >= 2 ** 32:
            out.write((1).to_bytes(4, "big") + b"free" + left.to_bytes(8, "big"))
            left -= 16
        elif left > 8:
            out.write(left.to_bytes(4, "big") + b"free")
            left -= 8
        while left > 0:
            n = min(left, len(block))
            out.write(block[:n])
            left -= n
    return dst


# ---- tus -----------------------------------------------------------------------------------
def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


# ---- direct looks into S3 and MariaDB ------------------------------------------------------
def s3_client(env: dict):
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name=env["S3_REGION"],
                        aws_access_key_id=env["S3_ACCESS_KEY"], aws_secret_access_key=env["S3_SECRET_KEY"],
                        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def s3_keys(env: dict, prefix: str) -> list[str]:
    resp = s3_client(env).list_objects_v2(Bucket=env["S3_BUCKET"], Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


def is_part_put(method: str, path: str, number: int) -> bool:
    """An S3 request (as a test proxy logs it) that is part ``number``'s PUT of a multipart upload."""
    return method == "PUT" and "uploadId=" in path and re.search(rf"[?&]partNumber={number}(&|$)", path) is not None


def s3_pending_multipart(env: dict, prefix: str) -> list[str]:
    resp = s3_client(env).list_multipart_uploads(Bucket=env["S3_BUCKET"], Prefix=prefix)
    return [u["Key"] for u in resp.get("Uploads", [])]


class db_conn:
    def __init__(self, env: dict):
        self.conn = mysql.connector.connect(host=env["DB_HOST"], port=int(env["DB_PORT"]), user=env["DB_USER"],
                                            password=env["DB_PASSWORD"], database=env["DB_NAME"], use_pure=True)

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()


def db_rows(env: dict, sql: str, params: tuple = ()) -> list[dict]:
    with db_conn(env) as conn:
        cur = conn.cursor(dictionary=True)
        cur.execute(sql, params)
        return cur.fetchall()


def db_execute(env: dict, sql: str, params: tuple = ()) -> None:
    with db_conn(env) as conn:
        conn.cursor().execute(sql, params)
        conn.commit()


def user_footprint(env: dict, user_id: str) -> dict:
    """Everything a user's uploads left: rows and objects (the 'nothing left' check)."""
    videos = db_rows(env, "SELECT id FROM videos WHERE owner_id = %s", (user_id,))
    uploads = db_rows(env, "SELECT id FROM uploads WHERE owner_id = %s", (user_id,))
    jobs = db_rows(env, "SELECT j.id FROM jobs j JOIN videos v ON v.id = j.subject WHERE v.owner_id = %s", (user_id,))
    return {"videos": len(videos), "uploads": len(uploads), "jobs": len(jobs)}


def video_objects(env: dict, video_id: str) -> list[str]:
    return (s3_keys(env, f"originals/{video_id}/") + s3_keys(env, f"media/{video_id}/")
            + s3_keys(env, f"captions/{video_id}/") + s3_pending_multipart(env, f"originals/{video_id}/"))


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB (0 once it is gone)."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    return [int(p) for p in _read(f"/proc/{pid}/task/{pid}/children").split()]
