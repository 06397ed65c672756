"""The `streamvault` CLI (cli/, installed into the venv by scripts/setup.sh) run as a real
subprocess against the live stack through the gateway, with HOME in a temporary folder: login
stores an API token (mode 0600, no password), an upload killed after its first tus PATCH is
resumed by a second run that sends only the rest and follows processing (the real worker runs
here) to ready, videos are listed, edited and deleted, refused tokens exit 3 with the server's
message, and an administrator's trace of a copy of no video of ours prints its verdict."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from svcommon.ffmpeg import SNIFF_BYTES
from svcommon.jobqueue import DETECTION_RUN
from tests.ingest_helpers import make_video
from tests.support.media import make_clip
from tests.support.videos import register_user

CLI = Path(sys.executable).with_name("streamvault")
TOKEN = re.compile(r"svt_[A-Za-z0-9_-]{43}")
CHUNK = 32 * 1024


@pytest.fixture(scope="module")
def gw(live_stack):
    return live_stack["url"]


def _env(home: Path, gw: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMVAULT_", "XDG_"))}
    return {**env, "HOME": str(home), "STREAMVAULT_URL": gw, **extra}


def cli(home: Path, gw: str, *args: str, stdin: str | None = None, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=_env(home, gw, **(env or {})))


def started(home: Path, gw: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(home, gw, **(env or {})))


def work_until_exit(proc: subprocess.Popen, worker_app, kinds=None, timeout: float = 120):
    """The real worker's jobs, run here (the test stack runs no worker) until the CLI exits."""
    from watermark_svc.jobs import run_once
    deadline, name = time.monotonic() + timeout, "cli-worker-" + uuid.uuid4().hex[:6]
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the CLI did not finish"
        if not run_once(worker_app, name, kinds=kinds):
            time.sleep(0.2)
    out, err = proc.communicate()
    return proc.returncode, out, err


def _ok(r: subprocess.CompletedProcess) -> dict:
    """The JSON a successful --json command printed."""
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def _text(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout


def test_login_resumed_upload_videos_and_refusals(gw, tmp_path, worker_app, own_jobs):
    user = register_user(gw, "cli")
    home = tmp_path / "home"
    login = _ok(cli(home, gw, "login", "--username", user["username"], "--password-stdin", "--json",
                    stdin=user["password"] + "\n"))
    assert login["api_token"]["scopes"] == ["read", "upload"] and login["username"] == user["username"]
    conf = home / ".config/streamvault/config.json"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600 and stat.S_IMODE(conf.parent.stat().st_mode) == 0o700
    stored = json.loads(conf.read_text())
    assert TOKEN.fullmatch(stored["token"]) and stored["server"] == gw
    assert user["password"] not in conf.read_text()
    shown = _ok(cli(home, gw, "token", "show", "--json"))
    assert shown["token"] != stored["token"] and shown["id"] == login["api_token"]["id"]
    # Logging in again replaces the token: the old one is revoked, not left live.
    again = _ok(cli(home, gw, "login", "--username", user["username"], "--password-stdin", "--json",
                    stdin=user["password"] + "\n"))
    live = requests.get(f"{gw}/api/auth/tokens", headers={"Authorization": f"Bearer {user['access_token']}"},
                        timeout=10).json()["items"]
    assert [t["id"] for t in live] == [again["api_token"]["id"]] != [login["api_token"]["id"]]
    stored = json.loads(conf.read_text())

    # An upload killed right after its first PATCH, then the same command again. That PATCH
    # carries only the first 4 KiB, what the server judges a file by (a non-video is refused
    # at once, not after a whole chunk: test_upload_of_a_file_that_is_no_video_says_why).
    clip = make_video(tmp_path / "cli clip.mp4", seconds=2)
    size = clip.stat().st_size
    assert size > 2 * CHUNK
    args = ("upload", str(clip), "--title", "CLI upload", "--description", "from a script",
            "--visibility", "public", "--json")
    killed = cli(home, gw, *args, "--chunk-size", str(CHUNK), env={"_STREAMVAULT_TEST_DIE_AFTER_PATCHES": "1"})
    assert killed.returncode == 137 and not killed.stdout, killed.stderr
    state = json.loads((home / ".config/streamvault/uploads.json").read_text())
    (saved,) = state.values()
    head = requests.head(gw + saved["upload_url"], timeout=10,
                         headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {stored['token']}"})
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(SNIFF_BYTES)

    rc, out, err = work_until_exit(started(home, gw, *args, "--wait"), worker_app)
    assert rc == 0, (out, err)
    (item,) = json.loads(out)["uploads"]
    assert (item["resumed_from"], item["bytes_sent"], item["size"]) == (SNIFF_BYTES, size - SNIFF_BYTES, size)
    video = item["video"]
    assert (video["title"], video["description"], video["visibility"], video["status"]) == \
        ("CLI upload", "from a script", "public", "ready")
    assert "resuming at 4.0 KiB" in err and "ready" in err            # progress lines (no TTY)
    assert json.loads((home / ".config/streamvault/uploads.json").read_text()) == {}
    original = requests.get(f"{gw}/api/videos/{video['id']}/original", timeout=30,
                            headers={"Authorization": f"Bearer {stored['token']}"})
    assert original.content == clip.read_bytes()                      # both runs' bytes, in order

    vid = video["id"]
    assert [v["id"] for v in _ok(cli(home, gw, "videos", "list", "--json"))["items"]] == [vid]
    assert _ok(cli(home, gw, "videos", "edit", vid, "--title", "Renamed by CLI", "--json"))["video"]["title"] == \
        "Renamed by CLI"
    assert "Renamed by CLI" in _text(cli(home, gw, "videos", "show", vid))
    unasked = cli(home, gw, "videos", "delete", vid, "--json")            # no terminal to confirm on
    assert unasked.returncode == 2 and json.loads(unasked.stdout)["code"] == "usage"
    assert _ok(cli(home, gw, "videos", "delete", vid, "--yes", "--json"))["deleted"] == [vid]
    gone = cli(home, gw, "videos", "show", vid, "--json")
    assert gone.returncode == 4 and json.loads(gone.stdout)["code"] == "not_found"

    # Refusals: a missing scope, then the token revoked (with the password) and used anyway.
    scope = cli(home, gw, "trace", str(clip), "--json")
    assert scope.returncode == 3 and json.loads(scope.stdout)["code"] == "insufficient_scope"
    _ok(cli(home, gw, "token", "revoke", "--username", user["username"], "--password-stdin", "--json",
            stdin=user["password"] + "\n"))
    assert "token" not in json.loads(conf.read_text())
    assert cli(home, gw, "videos", "list").returncode == 3
    revoked = cli(home, gw, "videos", "list", "--json", env={"STREAMVAULT_TOKEN": stored["token"]})
    body = json.loads(revoked.stdout)
    assert revoked.returncode == 3 and (body["code"], body["status"]) == ("invalid_token", 401)
    assert body["error"] in revoked.stderr and "invalid_token, HTTP 401" in revoked.stderr
    bad = cli(home, gw, "login", "--username", user["username"], "--password-stdin", stdin="wrong password\n")
    assert bad.returncode == 3 and "HTTP 401" in bad.stderr and "svt_" not in conf.read_text()


def test_trace_of_a_copy_of_no_video(gw, live_stack, tmp_path, worker_app, own_detections):
    home = tmp_path / "home"
    _ok(cli(home, gw, "login", "--username", "admin", "--scopes", "forensics", "--json",
            env={"STREAMVAULT_PASSWORD": live_stack["env"]["ADMIN_PASSWORD"]}))
    suspect = make_clip(tmp_path / "suspect.mp4", seconds=3, size="320x180", audio=False, source="testsrc")
    rc, out, err = work_until_exit(started(home, gw, "trace", str(suspect), "--json"), worker_app,
                                   kinds=[DETECTION_RUN])
    assert rc == 0, (out, err)
    det = json.loads(out)
    assert det["status"] == "done" and det["result"]["match"] is None, det
    assert det["result"]["conclusion"].startswith("no match")
    assert det["report_url"] == f"{gw}/admin/forensics/detections/{det['job_id']}/report"
    token = json.loads((home / ".config/streamvault/config.json").read_text())["token"]
    report = requests.get(det["report_json_url"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert report.status_code == 200 and report.json()["job_id"] == det["job_id"]
    _ok(cli(home, gw, "token", "revoke", "--username", "admin", "--json",
            env={"STREAMVAULT_PASSWORD": live_stack["env"]["ADMIN_PASSWORD"]}))


def test_upload_of_a_file_that_is_no_video_says_why(gw, tmp_path, live_stack):
    """A 300 MiB archive given by mistake: the server refuses its first PATCH, its first 4 KiB
    (the CLI sends them alone, then 256 MiB chunks); the CLI says why and keeps no resume
    state, and the server kept nothing."""
    user = register_user(gw, "clizip")
    home = tmp_path / "home"
    _ok(cli(home, gw, "login", "--username", user["username"], "--password-stdin", "--json",
            stdin=user["password"] + "\n"))
    archive = tmp_path / "holiday.zip"
    with open(archive, "wb") as f:
        f.write(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 32)
        f.truncate(300 * 1024 * 1024)
    r = cli(home, gw, "upload", str(archive), "--title", "Holiday", "--json", timeout=120)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    (err,) = json.loads(r.stdout)["errors"]
    assert (err["code"], err["status"]) == ("not_a_video", 422) and "not a recognised video file" in err["error"], err
    assert "not a video we accept" in r.stderr
    assert json.loads((home / ".config/streamvault/uploads.json").read_text() or "{}") == {}
    rows = requests.get(f"{gw}/api/videos/mine", headers={"Authorization": f"Bearer {user['access_token']}"},
                        timeout=10).json()
    assert rows["items"] == [], rows
