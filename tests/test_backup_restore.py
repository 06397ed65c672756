"""Backup and restore end to end (issue 18, item 7; docs/operations.md "Backup and restore"):
`python -m stack.backup backup` of the live test stack while a viewer streams from it, then
`restore` onto a second, empty stack of real MariaDB + SeaweedFS, whose services are started
on the restored secrets. Then: an old account logs in with its old password, the password
video plays through the restored gateway for the viewer holding a grant (a segment fetched and
decrypted) and not for an account without one, and a leak made before the backup still names
its session. The forensic check is not a full trace (about 60 s): the restored watermark secret
verifies the leak's metadata tag (the trace's exact layer) naming the session, the restored
database holds that session's evidence record, and the detector's scoring over the restored
sessions of the video puts the leaking session's codeword first with every bit agreeing.
The refusals (wrong passphrase, a damaged object, secrets that do not open the data: undone,
a non-empty stack) are checked in-process, and the restored bucket is read back with the
compose command (`python -m file_svc.bucket_backup save`) and compared with the backup."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import mysql.connector
import numpy as np
import pytest
import requests

from file_svc import bucket_backup
from stack import components
from stack.backup import BackupError, database_rows, restore
from stack.environment import for_service, gunicorn_command, stack_env
from stack.layout import Stack
from stack.secrets import load_or_create
from svcommon.passwords import hash_password
from tests.support.contract_client import ContractClient, ContractError, parse_segment_url
from tests.support.media import ONE_RUNG
from tests.support.playback import VIDEO_PASSWORD
from tests.support.sealed_media import is_box_sequence, keys_of
from tests.support.videos import make_ready_video, register_user, sql
from watermark_svc.forensics.metadata import find_tags
from watermark_svc.forensics.scoring import score_sessions
from watermark_svc.repository.forensics import session_detail, session_ids_of_video

CLIP_SECONDS = 4
CLIP_SIZE = ONE_RUNG
PASSPHRASE = "correct horse battery staple 7"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args: str, passphrase: str = PASSPHRASE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack.backup", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "SV_BACKUP_PASSPHRASE": passphrase}, timeout=300)


@pytest.fixture(scope="module")
def empty_stack(live_stack, storage_starter):
    """A second stack (this run's ports + 500: no port of it is one of the first stack's) with
    a fresh MariaDB and SeaweedFS and nothing in them; its services are started by the test."""
    first = live_stack["stack"]
    stack = Stack(f"{first.name}-restored", first.offset + 500)
    _, procs = storage_starter(stack)
    try:
        components.wait_http(stack.s3_endpoint, timeout=60)
        yield {"stack": stack, "procs": procs}
    finally:
        procs.stop(grace=2)


def start_services(stack: Stack, procs, env: dict) -> str:
    """auth, file and streaming (what logging in and playing need) and the gateway."""
    started = [(name, procs.start(name, gunicorn_command(stack, name, sys.executable), for_service(name, env)))
               for name in ("auth", "file", "streaming")]
    for name, proc in started:
        components.wait_http(f"{stack.url(name)}/healthz", proc)
    components.nginx_prepare(stack, env)
    components.wait_http(f"{stack.gateway_url}/gateway/healthz", procs.start("gateway", components.nginx_command(stack)))
    return stack.gateway_url


def connect(stack: Stack, secrets: dict):
    return mysql.connector.connect(host="127.0.0.1", port=stack.mariadb_port, user="streamvault",
                                   password=secrets["DB_PASSWORD"], database="streamvault", autocommit=True)


def segment_files(c: ContractClient, s) -> list[tuple[str, int, str]]:
    """(rendition, index, file name) of every video segment the session's manifest lists."""
    rep = next(r for r in c.representations(s) if r.kind == "video")
    return [(*parse_segment_url(url)[1:], url.rsplit("/", 1)[1]) for url in rep.segment_urls]


def codeword_read(files: list[tuple[str, int, str]], keys) -> np.ndarray:
    """+1 where the file is the A variant, -1 for B, by the names the content keys give."""
    signs = {keys.file_name(r, "a", i): 1.0 for r, i, _ in files} | {keys.file_name(r, "b", i): -1.0 for r, i, _ in files}
    assert all(name in signs for _, _, name in files), "the keys do not name these segments"
    return np.array([signs[name] for _, _, name in files])


def test_backup_while_streaming_then_restore_onto_an_empty_stack(live_stack, worker_app, mdb, stores, clip,
                                                                 service_config, empty_stack, tmp_path, capsys, monkeypatch):
    gw = live_stack["url"]
    owner = register_user(gw, "bkowner")
    viewer = register_user(gw, "bkviewer")
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Backed up clip",
                           visibility="password", password_hash=hash_password(VIDEO_PASSWORD))
    # The grant: the viewer unlocks the password video once.
    r = requests.post(f"{gw}/api/videos/{vid}/unlock", json={"password": VIDEO_PASSWORD},
                      headers={"Authorization": f"Bearer {viewer['access_token']}"})
    assert r.status_code == 204, r.text
    # A leak: the viewer's whole copy of one session (its init carries the session's tag).
    c = ContractClient(gw).login(viewer["username"], viewer["password"])
    leaked = c.open_session(vid)
    leak_segments = segment_files(c, leaked)
    leak_file = c.download(leaked, leak_segments[0][0], tmp_path / "leak.mp4")

    # The backup is taken while another session of the viewer keeps streaming.
    streamer = ContractClient(gw).login(viewer["username"], viewer["password"])
    stream = streamer.open_session(vid)
    urls = [u for r in streamer.representations(stream) for u in (r.init_url, *r.segment_urls)]
    stop, served, failures = threading.Event(), [0], []

    def stream_until_stopped():
        try:
            beat = time.monotonic()
            while not stop.is_set():
                for url in urls:
                    assert streamer.fetch(stream, url)
                    served[0] += 1
                if time.monotonic() - beat > 2:           # as a player does, every few seconds
                    streamer.heartbeat(stream, 1.0)
                    beat = time.monotonic()
        except Exception as exc:      # noqa: BLE001 - reported by the test below
            failures.append(exc)
    reader = threading.Thread(target=stream_until_stopped, daemon=True)
    reader.start()
    try:
        made = run_tool("backup", "--stack", "test", "--out", str(tmp_path / "backups"))
    finally:
        stop.set()
        reader.join(30)
    assert made.returncode == 0, made.stdout + made.stderr
    assert not failures and served[0] > 0, failures
    folder = next((tmp_path / "backups").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["secrets"]["included"] and manifest["objects"]["count"] > 0
    assert "database: dumping" in made.stdout and "backup complete" in made.stdout
    secrets_file = (folder / "secrets.enc").read_text()
    assert service_config["MEDIA_MASTER_KEY"] not in secrets_file           # encrypted, not copied

    target, procs = empty_stack["stack"], empty_stack["procs"]
    # Refusals, called in-process (the command's exit code is checked below): a wrong
    # passphrase and a damaged object are found before anything is written; a restore whose
    # secrets do not open the data (a copy claiming none, so the target's own are used) is
    # undone, leaving the stack empty.
    with pytest.raises(BackupError, match="passphrase does not open"):
        restore(target, folder, "not the passphrase")
    bad = tmp_path / "bad-copy"
    shutil.copytree(folder, bad)
    one = json.loads((bad / "objects.json").read_text())["objects"][0]["key"]
    (bad / "objects" / one).write_bytes(b"damaged")
    with pytest.raises(BackupError, match=f"object {one}: the file in the backup does not match"):
        restore(target, bad, PASSPHRASE)
    shutil.copy(folder / "objects" / one, bad / "objects" / one)
    (bad / "manifest.json").write_text(json.dumps({**manifest, "secrets": {"included": False}}))
    with pytest.raises(BackupError, match="MEDIA_MASTER_KEY does not open"):
        restore(target, bad, None)
    assert "emptying the stack again" in capsys.readouterr().out and database_rows(target) == 0

    done = run_tool("restore", str(folder), "--stack", target.name, "--offset", str(target.offset))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restore complete" in done.stdout
    # A second restore onto the now non-empty stack is refused.
    with pytest.raises(BackupError, match="is not empty"):
        restore(target, folder, PASSPHRASE)

    # The restored bucket holds exactly the backup's objects (read back by the compose command).
    for name, value in stack_env(target, load_or_create(target.var / "secrets.env")).items():
        monkeypatch.setenv(name, value)
    assert bucket_backup.main(["save", str(tmp_path / "readback")]) == 0
    digests = lambda path: {o["key"]: o["sha256"] for o in json.loads(path.read_text())["objects"]}  # noqa: E731
    assert digests(tmp_path / "readback" / "objects.json") == digests(folder / "objects.json")

    secrets = load_or_create(target.var / "secrets.env")
    for name in ("MEDIA_MASTER_KEY", "WATERMARK_SECRET", "AUTH_KEY_ENCRYPTION_SECRET"):
        assert secrets[name] == service_config[name]          # the data secrets came with the backup
    assert secrets["DB_PASSWORD"] != service_config["DB_PASSWORD"]   # the stack's own credentials stay
    # The live stack's relaxed per-address throttles: the restored database holds every
    # sign-up this test session made from 127.0.0.1, so the default limit would refuse one more.
    throttles = {k: live_stack["env"][k] for k in ("LOGIN_MAX_FAILURES_IP", "SIGNUP_MAX_PER_IP",
                                                   "PASSWORD_CHECKS_PER_MINUTE")}
    env = {**stack_env(target, secrets), **throttles, "LOG_LEVEL": "WARNING"}
    gw2 = start_services(target, procs, env)

    # Accounts: the old password logs in; the grant opens the password video, which plays.
    c2 = ContractClient(gw2).login(viewer["username"], viewer["password"])
    s2 = c2.open_session(vid)
    rep = next(r for r in c2.representations(s2) if r.kind == "video")
    assert is_box_sequence(c2.fetch(s2, rep.init_url)) and is_box_sequence(c2.fetch(s2, rep.segment_urls[-1]))
    stranger = register_user(gw2, "bkstranger")
    with pytest.raises(ContractError) as refused:
        ContractClient(gw2).login(stranger["username"], stranger["password"]).open_session(vid)
    assert refused.value.status == 403, refused.value.body

    # Forensics: the old leak still names its session from the restored stack alone.
    conn = connect(target, secrets)
    try:
        tags = [t for t in find_tags(str(leak_file), secrets["WATERMARK_SECRET"].encode()) if t.valid]
        assert [t.session_id for t in tags] == [leaked.id]
        evidence = session_detail(conn, leaked.id)
        assert evidence["username"] == viewer["username"] and evidence["video_id"] == vid
        # The detector's scoring: the leak's A/B reading (by the restored content secret's
        # names) against the codewords of the video's restored sessions.
        z = codeword_read(leak_segments, keys_of(conn, secrets["MEDIA_MASTER_KEY"], vid))
        indices = [i for _, i, _ in leak_segments]
        scores = score_sessions(z, indices, session_ids_of_video(conn, vid), secrets["WATERMARK_SECRET"].encode())
        leak_score = next(s for s in scores if s.session_id == leaked.id)
        assert leak_score.score == scores[0].score and leak_score.agree == len(indices)
        assert sql(conn, "SELECT COUNT(*) AS n FROM video_access_grants WHERE video_id = %s", (vid,), one=True)["n"] == 1
    finally:
        conn.close()
    for name in ("gateway", "streaming", "file", "auth"):
        procs.stop(name, grace=2)
