"""Delivery v1 → v2 conversion against the real stack (MariaDB, file-svc over SeaweedFS):
``python -m watermark_svc.convert`` as an operator runs it, and the idle media worker.
A v1 video is made from a processed one exactly as processing stored it before v2
(plaintext segments at the v1 keys, delivery_version 1, no content secret)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from svcommon.filestore import media_prefix
from svcommon.media_crypto import ContentSealer
from tests.support.media import make_clip
from tests.support.sealed_media import (assert_sealed_only, expected_segments, make_v1, media_row, plain_key,
                                        plain_segments, sealed_key, sealed_objects)
from tests.support.videos import make_ready_video, sql

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("conv") / "clip.mp4", seconds=4).read_bytes()


@pytest.fixture(scope="module")
def master_key(worker_app):
    return worker_app.config["MEDIA_MASTER_KEY"]


@pytest.fixture
def v1_video(worker_app, mdb, stores, owner_id, clip, master_key):
    """A freshly processed video turned back into its pre-v2 state (module clip: 4 s →
    2 segments × 2 rungs × A/B + 3 audio)."""
    from watermark_svc.convert import convert_video
    from watermark_svc.extensions import db as wdb
    vid = make_ready_video(worker_app, mdb, stores, owner_id, clip)
    make_v1(stores["watermark"], mdb, master_key, vid)
    assert media_row(mdb, vid)["delivery_version"] == 1 and sealed_objects(stores["watermark"], vid) == []
    assert len(plain_segments(stores["watermark"], vid)) == len(expected_segments(media_row(mdb, vid)["metadata"]))
    yield vid
    with worker_app.app_context():       # no v1 video left for the next test's idle worker
        convert_video(worker_app, wdb, stores["watermark"], vid, out=lambda line: None)


def run_convert(live_stack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **live_stack["env"], "PYTHONPATH": "watermark-svc"}
    return subprocess.run([sys.executable, "-m", "watermark_svc.convert", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def listing(fs, vid) -> dict[str, str]:
    return {o["key"]: o.get("etag", "") for o in fs.list(media_prefix(vid))}


def test_command_converts_a_v1_video_and_a_rerun_is_a_no_op(live_stack, stores, mdb, master_key, v1_video):
    fs = stores["watermark"]
    r = run_convert(live_stack, "--video", v1_video)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{v1_video}: converted:" in r.stdout and "done: 1 ok, 0 not converted" in r.stdout
    n = len(expected_segments(media_row(mdb, v1_video)["metadata"]))
    assert f"{n} to encrypt" in r.stdout and f"{n} plaintext objects removed" in r.stdout
    assert assert_sealed_only(fs, mdb, master_key, v1_video) == n == 2 * 2 * 2 + 3     # 2 rungs x A/B, audio 3
    assert plain_segments(fs, v1_video) == []
    before = listing(fs, v1_video)
    again = run_convert(live_stack, "--video", v1_video)
    assert again.returncode == 0 and f"{v1_video}: current: already delivery v2" in again.stdout, again.stdout
    assert listing(fs, v1_video) == before


def test_interrupted_conversion_resumes_with_its_secret(live_stack, stores, mdb, master_key, v1_video):
    """A run that died midway: its secret stored, some segments encrypted, version still 1.
    The re-run (every v1 video, as after an upgrade) keeps that secret and those objects."""
    fs = stores["watermark"]
    keys, sealed = ContentSealer(master_key).new_secret(v1_video)
    sql(mdb, "UPDATE video_media SET content_secret_enc = %s WHERE video_id = %s", (sealed, v1_video))
    done = expected_segments(media_row(mdb, v1_video)["metadata"])[::3]
    for rendition, variant, index in done:
        plain = fs.get_bytes(plain_key(v1_video, rendition, variant, index))
        body = keys.encrypt(rendition, variant, index, plain)
        fs.put_stream(sealed_key(keys, rendition, variant, index), body, length=len(body))
    kept = {k: fs.get_bytes(k) for k in sealed_objects(fs, v1_video)}
    n = len(expected_segments(media_row(mdb, v1_video)["metadata"]))
    assert len(kept) == len(done) == 4
    r = run_convert(live_stack)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{v1_video}: converted: {n - 4} segments encrypted (4 already were)" in r.stdout, r.stdout
    assert bytes(media_row(mdb, v1_video)["content_secret_enc"]) == sealed
    assert {k: fs.get_bytes(k) for k in kept} == kept          # reused, not encrypted again
    assert assert_sealed_only(fs, mdb, master_key, v1_video) == n


def test_conversion_resumes_after_the_plaintext_was_partly_removed(worker_app, stores, mdb, master_key, v1_video):
    """Died while removing the plaintext (every segment already encrypted): still v1, so
    the next run finds it, encrypts nothing, removes the rest and flips the version."""
    from watermark_svc.convert import convert_video
    from watermark_svc.extensions import db as wdb
    fs = stores["watermark"]
    keys, sealed = ContentSealer(master_key).new_secret(v1_video)
    sql(mdb, "UPDATE video_media SET content_secret_enc = %s WHERE video_id = %s", (sealed, v1_video))
    for rendition, variant, index in expected_segments(media_row(mdb, v1_video)["metadata"]):
        plain = fs.get_bytes(plain_key(v1_video, rendition, variant, index))
        body = keys.encrypt(rendition, variant, index, plain)
        fs.put_stream(sealed_key(keys, rendition, variant, index), body, length=len(body))
    n = len(expected_segments(media_row(mdb, v1_video)["metadata"]))
    for key in plain_segments(fs, v1_video)[::2]:
        fs.delete(key)
    left = len(plain_segments(fs, v1_video))
    assert 0 < left < n
    lines: list[str] = []
    with worker_app.app_context():
        outcome = convert_video(worker_app, wdb, fs, v1_video, out=lines.append)
    assert (outcome.state, outcome.message) == (
        "converted", f"0 segments encrypted ({n} already were), {left} plaintext objects removed, delivery v2"), lines
    assert lines == [f"{v1_video}: {n} segments, {n} already encrypted, 0 to encrypt"]
    assert assert_sealed_only(fs, mdb, master_key, v1_video) == n


def test_idle_worker_converts_one_slice_at_a_time(worker_app, stores, mdb, master_key, v1_video):
    """A slice of 0 s still does one unit of work: each idle poll encrypts exactly one
    segment, then removes one variant folder or audio segment of plaintext, then the worker
    looks for jobs again; the video stays v1 (and unplayable) until the last."""
    from watermark_svc.convert import convert_when_idle
    from watermark_svc.extensions import db as wdb
    fs = stores["watermark"]
    meta = media_row(mdb, v1_video)["metadata"]
    segments = len(expected_segments(meta))
    # one poll per segment, per plaintext step, and a last one that finds none left and flips
    n = segments + 2 * len(meta["renditions"]) + len(meta["audio"]["segment_sizes"]) + 1
    saved = worker_app.config["WORKER_CONVERT_SLICE_SECONDS"]
    worker_app.config["WORKER_CONVERT_SLICE_SECONDS"] = 0
    try:
        assert convert_when_idle(worker_app, wdb, fs, {})
        assert len(sealed_objects(fs, v1_video)) == 1 and media_row(mdb, v1_video)["delivery_version"] == 1
        polls = 1
        while media_row(mdb, v1_video)["delivery_version"] == 1:
            assert convert_when_idle(worker_app, wdb, fs, {}) and polls < n
            polls += 1
    finally:
        worker_app.config["WORKER_CONVERT_SLICE_SECONDS"] = saved
    assert polls == n and not convert_when_idle(worker_app, wdb, fs, {})     # then idle: nothing left
    assert assert_sealed_only(fs, mdb, master_key, v1_video) == segments


def test_worker_process_converts_v1_videos_when_idle(live_stack, stores, mdb, master_key, v1_video,
                                                     own_jobs, own_detections):
    """`docker compose up` after an upgrade: the workers convert with no manual step."""
    env = {**os.environ, **live_stack["env"], "PYTHONPATH": "watermark-svc", "WORKER_POLL_SECONDS": "0.2",
           "WORKER_CONVERT_SLICE_SECONDS": "0.2"}
    proc = subprocess.Popen([sys.executable, "-m", "watermark_svc.worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while media_row(mdb, v1_video)["delivery_version"] == 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    assert assert_sealed_only(stores["watermark"], mdb, master_key, v1_video) == 11


def test_video_deleted_during_conversion_leaves_nothing(worker_app, stores, mdb, service_config, v1_video):
    """upload-svc's delete marks the video 'deleting' (then removes its objects, then the
    row) while a conversion is past its first check: whatever the conversion stores after
    that must not outlive the delete."""
    from upload_svc import repository as upload_repo
    from tests.support.videos import connect_db
    from watermark_svc.convert import convert_video
    from watermark_svc.extensions import db as wdb
    fs = stores["watermark"]
    deleter = connect_db(service_config)
    deleter.autocommit = False

    def delete_begins(line: str) -> None:       # called once the conversion has its plan
        if "to encrypt" in line:
            upload_repo.mark_deleting(deleter, v1_video)
            deleter.commit()
    try:
        with worker_app.app_context():
            outcome = convert_video(worker_app, wdb, fs, v1_video, out=delete_begins)
        assert outcome.state == "gone" and "removed what the conversion had stored" in outcome.message
        assert list(fs.list(media_prefix(v1_video))) == []
        stores["upload"].delete_prefix(media_prefix(v1_video))      # the delete goes on, in its order
        upload_repo.delete_video(deleter, v1_video)
        deleter.commit()
    finally:
        deleter.close()
    assert list(fs.list(media_prefix(v1_video))) == []


def test_dry_run_changes_nothing(live_stack, stores, mdb, v1_video):
    fs = stores["watermark"]
    before = listing(fs, v1_video)
    r = run_convert(live_stack, "--video", v1_video, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (f"{v1_video}: dry-run: would seal and store a new content secret, encrypt 11 of 11 segments, "
            "remove 11 plaintext objects, set delivery v2") in r.stdout
    assert listing(fs, v1_video) == before
    row = media_row(mdb, v1_video)
    assert (row["delivery_version"], row["content_secret_enc"]) == (1, None)


def test_a_video_another_converter_holds_is_left_alone(live_stack, stores, mdb, service_config, v1_video):
    from tests.support.videos import connect_db
    holder = connect_db(service_config)
    try:
        assert sql(holder, "SELECT GET_LOCK(%s, 0) AS got", (f"streamvault.convert.{v1_video}",), one=True)["got"] == 1
        r = run_convert(live_stack, "--video", v1_video, "--wait", "1")
    finally:
        holder.close()
    assert r.returncode == 1 and f"{v1_video}: busy:" in r.stdout, r.stdout
    assert media_row(mdb, v1_video)["delivery_version"] == 1 and sealed_objects(stores["watermark"], v1_video) == []


def test_unknown_or_malformed_video_is_a_clear_failure(live_stack):
    r = run_convert(live_stack, "--video", "0" * 32)
    assert r.returncode == 1 and "no processed video with this id" in r.stdout, r.stdout
    r = run_convert(live_stack, "--video", "../etc")
    assert r.returncode == 1 and "--video must be a video id" in r.stderr, r.stderr
