"""Chunk jobs through the real stack (MariaDB queue, file-svc over SeaweedFS, ffmpeg, real
worker processes, streaming-svc via the gateway): a worker killed mid-chunk loses only
that chunk (the others are never encoded again: video_chunks.encodes counts every start);
two workers share one video's chunks; a video is playable (the contract client decrypts
it) while its higher rung is still encoding, and the ladder grows when it is done. A part
that dies: a not-yet-playable video fails and its sibling running elsewhere stops and
leaves nothing; a playable one keeps its note and its ladder becomes final; a lapse on a
part's final attempt cleans up and fails the video."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from svcommon.db import query
from svcommon.filestore import media_prefix
from tests.support.media import ONE_RUNG, make_clip
from tests.support.playback import viewer
from tests.support.sealed_media import assert_sealed_only
from tests.support.videos import pending_jobs, queue_video, run_video, sql

pytestmark = [pytest.mark.heavy, pytest.mark.usefixtures("own_jobs")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=6).read_bytes()


@contextmanager
def workers(live_stack, n: int, **env):
    """n real worker processes (python -m watermark_svc.worker), killed at the end."""
    env = {**os.environ, **live_stack["env"], "WORKER_LEASE_SECONDS": "3", "PYTHONPATH": "watermark-svc",
           **{k: str(v) for k, v in env.items()}}
    procs = [subprocess.Popen([sys.executable, "-m", "watermark_svc.worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def chunks(db, vid) -> list[dict]:
    return query(db, "SELECT rung, chunk_index, encodes, encoded_by, result IS NOT NULL AS done "
                     "FROM video_chunks WHERE video_id = %s ORDER BY rung, chunk_index", (vid,))


def video(db, vid) -> dict:
    return query(db, "SELECT status, status_message FROM videos WHERE id = %s", (vid,), one=True)


def owner_progress(db, vid) -> float:
    """The progress upload-svc shows the owner (GET /api/videos/{id}, its SSE)."""
    from upload_svc.present import progress
    from upload_svc.repository import video as upload_video
    return progress(upload_video(db, vid))


def renditions(db, vid) -> tuple[list[str], bool]:
    meta = json.loads(query(db, "SELECT metadata FROM video_media WHERE video_id = %s", (vid,), one=True)["metadata"])
    return [r["name"] for r in meta["renditions"]], meta.get("ladder_complete", True)


def plan_in_chunks(worker_app, db, vid, preset: str | None = None, segments: int = 1) -> None:
    """Plan the video in chunks of ``segments`` (one: two per rung for the 6-s clip), optionally
    with another x264 preset for every chunk of it (the plan keeps it)."""
    from watermark_svc.jobs import run_once
    per_chunk = worker_app.config["CHUNK_SEGMENTS"]
    worker_app.config["CHUNK_SEGMENTS"] = segments
    try:
        assert run_once(worker_app, "planner")
    finally:
        worker_app.config["CHUNK_SEGMENTS"] = per_chunk
    if preset:
        sql(db, "UPDATE video_encodes SET plan = JSON_SET(plan, '$.settings.preset', %s) WHERE video_id = %s",
            (preset, vid))


def recording(leases: list):
    """The worker's handler map, its chunk handler noting the lease it ran under."""
    from watermark_svc.chunk_jobs import CHUNK
    from watermark_svc.jobs import handlers

    def run(app, job, lease):
        leases.append(lease)
        CHUNK.run(app, job, lease)
    return {**handlers(), "video.chunk": dataclasses.replace(CHUNK, run=run)}


def test_worker_killed_mid_chunk_loses_only_that_chunk(worker_app, stores, db, owner_id, clip, live_stack):
    vid = queue_video(db, stores, owner_id, clip)
    # One segment per chunk (4 chunks: 2 per rung); 'slower' (seconds a chunk), so a chunk surely
    # runs when we kill, and the rescuer's share stays short.
    with workers(live_stack, 1, CHUNK_SEGMENTS=1, X264_PRESET="slower"):
        deadline = time.monotonic() + 240
        while True:
            assert time.monotonic() < deadline, (chunks(db, vid), video(db, vid))
            running = query(db, "SELECT payload, progress FROM jobs WHERE subject = %s AND kind = 'video.chunk' "
                                "AND status = 'running'", (vid,), one=True)
            if any(c["done"] for c in chunks(db, vid)) and running and running["progress"] > 0:
                break
            time.sleep(0.1)
    killed = json.loads(running["payload"])
    before = chunks(db, vid)
    assert len(before) == 4 and not all(c["done"] for c in before)
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE subject = %s "
            "AND status = 'running'", (vid,))
    run_video(worker_app, db, vid, "rescuer")
    after = chunks(db, vid)
    assert video(db, vid) == {"status": "ready", "status_message": ""}
    assert all(c["done"] for c in after)
    redone = [(c["rung"], c["chunk_index"]) for c in after if c["encodes"] == 2]
    assert redone == [(killed["rung"], killed["chunk"])], after
    assert all(c["encodes"] == 1 for c in after if (c["rung"], c["chunk_index"]) != redone[0])
    # Chunks done before the kill kept their worker: the rescuer never touched them.
    done_before = {(c["rung"], c["chunk_index"]): c["encoded_by"] for c in before if c["done"]}
    assert done_before and all(c["encoded_by"] == done_before[(c["rung"], c["chunk_index"])]
                               for c in after if (c["rung"], c["chunk_index"]) in done_before)
    assert renditions(db, vid) == (["480p", "360p"], True)
    assert assert_sealed_only(stores["watermark"], db, worker_app.config["MEDIA_MASTER_KEY"], vid) \
        == 2 * 2 * 3 + 4


def test_two_workers_share_one_videos_chunks(worker_app, stores, db, owner_id, live_stack, tmp_path):
    long_clip = make_clip(tmp_path / "clip.mp4", seconds=10).read_bytes()
    vid = queue_video(db, stores, owner_id, long_clip)
    with workers(live_stack, 2, CHUNK_SEGMENTS=1, X264_PRESET="faster"):
        deadline = time.monotonic() + 300
        while pending_jobs(db, vid):
            assert time.monotonic() < deadline, chunks(db, vid)
            time.sleep(0.3)
    rows = chunks(db, vid)
    assert len(rows) == 2 * 4 and all(c["done"] and c["encodes"] == 1 for c in rows), rows
    assert len({c["encoded_by"] for c in rows}) == 2, rows         # both workers encoded chunks
    assert video(db, vid) == {"status": "ready", "status_message": ""}
    assert assert_sealed_only(stores["watermark"], db, worker_app.config["MEDIA_MASTER_KEY"], vid) \
        == 2 * 2 * 5 + len(json.loads(query(db, "SELECT metadata FROM video_media WHERE video_id = %s",
                                            (vid,), one=True)["metadata"])["audio"]["segment_sizes"])


def frames(path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


def test_playable_while_higher_rung_encodes_and_the_ladder_grows(worker_app, stores, db, owner_id, clip,
                                                                 live_stack, tmp_path):
    from watermark_svc.jobs import run_once
    from watermark_svc.originals import cache_of
    vid = queue_video(db, stores, owner_id, clip)
    fetched = cache_of(worker_app).fetches
    plan_in_chunks(worker_app, db, vid)
    assert video(db, vid) == {"status": "processing", "status_message": "encoding 360p 0 %"}
    assert owner_progress(db, vid) == 0.0
    assert run_once(worker_app, "test-worker")            # one of the jobs that make it playable
    # The owner's number counts toward playable: one of the audio + 360p chunk jobs is done.
    toward = query(db, "SELECT COUNT(*) AS n FROM jobs WHERE subject = %s AND kind <> 'video.process' "
                       "AND priority = (SELECT MAX(priority) FROM jobs WHERE subject = %s)", (vid, vid), one=True)["n"]
    assert toward >= 2 and video(db, vid)["status"] == "processing"
    assert owner_progress(db, vid) == pytest.approx(100 / toward, abs=0.1)
    # The lowest rung and the audio come first (priorities): ready with 360p alone.
    run_video(worker_app, db, vid, until=lambda: video(db, vid)["status"] == "ready")
    assert renditions(db, vid) == (["360p"], False)
    assert video(db, vid)["status_message"] == "playable at 360p · 480p 0 %"
    ready_at = query(db, "SELECT ready_at FROM videos WHERE id = %s", (vid,), one=True)["ready_at"]
    assert [c["done"] for c in chunks(db, vid) if c["rung"] == "480p"] == [0, 0]
    _, client = viewer(live_stack["url"])
    s = client.open_session(vid)
    assert [r.id for r in client.representations(s) if r.kind == "video"] == ["360p"]
    beat = client.heartbeat(s, 0)
    assert beat["renditions"] == ["360p"] and beat["storyboard_url"] is None, beat    # made after the ladder
    assert frames(client.download(s, "360p", tmp_path / "360p.mp4")) == 180
    assert run_once(worker_app, "test-worker")            # one of the two 480p chunks
    assert video(db, vid) == {"status": "ready", "status_message": "playable at 360p · 480p 50 %"}
    assert renditions(db, vid) == (["360p"], False)
    run_video(worker_app, db, vid)
    assert renditions(db, vid) == (["480p", "360p"], True)
    assert video(db, vid) == {"status": "ready", "status_message": ""}
    # One download of the original for the planning, the audio and four chunks on this
    # worker; the local copy went when the video was complete.
    assert cache_of(worker_app).fetches - fetched == 1
    # Still listed as of when it became playable (the library's order), not re-dated by the join.
    assert query(db, "SELECT ready_at FROM videos WHERE id = %s", (vid,), one=True)["ready_at"] == ready_at
    assert not (cache_of(worker_app).root / vid).exists()
    # The same session's manifest now offers 480p too (ABR picks it up), and it decrypts: at
    # the latest once streaming-svc's cache of a growing ladder lapses (GROWING_LADDER_SECONDS).
    from streaming_svc.live import GROWING_LADDER_SECONDS
    deadline = time.monotonic() + GROWING_LADDER_SECONDS + 5
    while (offered := [r.id for r in client.representations(s) if r.kind == "video"]) != ["480p", "360p"]:
        assert offered == ["360p"] and time.monotonic() < deadline, offered
        time.sleep(0.5)
    # Heartbeats say so (a player holding the 360p manifest loads it again).
    while (said := client.heartbeat(s, 0)["renditions"]) != ["480p", "360p"]:
        assert said == ["360p"] and time.monotonic() < deadline, said
        time.sleep(0.5)
    # and name the storyboard made since the session opened (the player adds it as a track).
    deadline = time.monotonic() + GROWING_LADDER_SECONDS + 5
    while (track := client.heartbeat(s, 0)["storyboard_url"]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert track == s.raw["manifest_url"].replace("manifest.mpd", "storyboard/thumbnails.vtt"), track
    vtt = client.http.get(live_stack["url"] + track)
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT"), vtt.text[:80]
    assert frames(client.download(s, "480p", tmp_path / "480p.mp4")) == 180


def _gray(path, fps: str = "30") -> np.ndarray:
    """Every frame of a video's first stream as 64x36 grey, on a constant-rate grid."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-vf", f"fps={fps}:start_time=0,scale=64:36:flags=area,format=gray", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 36, 64).astype(np.float32)


def test_an_mpegts_upload_is_chunked_frame_exact(worker_app, stores, db, owner_id, live_stack, tmp_path):
    """MPEG-TS (camcorders, broadcast captures): timestamps from ~1.4 s, and seeks that land on
    any packet, not on a key frame. Once refused as truncated; now its three chunks (2, 2 and
    4 s; key frames 1.5 s apart: never on a chunk's first frame) each start on
    their own first frame: frame i of the played stream is frame i of the source, none
    frozen or lost at a chunk's edge."""
    src = tmp_path / "camcorder.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={ONE_RUNG}:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "8", "-c:v", "libx264",
                    "-preset", "veryfast", "-g", "45", "-c:a", "aac", str(src)], check=True)
    vid = queue_video(db, stores, owner_id, src.read_bytes())
    plan_in_chunks(worker_app, db, vid)
    assert len({c["chunk_index"] for c in chunks(db, vid)}) == 3      # the last one runs to the end
    run_video(worker_app, db, vid)
    assert video(db, vid) == {"status": "ready", "status_message": ""}
    _, client = viewer(live_stack["url"])
    s = client.open_session(vid)
    played, source = _gray(client.download(s, "360p", tmp_path / "360p.mp4")), _gray(src)
    # The file starts with the audio, 21 ms before the first picture: that picture is shown
    # from the start (one frame more, the audio in sync), then frame i + 1 is source frame i.
    assert len(source) == 240 and len(played) == 241
    assert float(np.abs(played[0] - played[1]).mean()) < 1
    played = played[1:]
    # Each played frame is closest to the source frame of its own index (testsrc2 moves
    # every frame; the watermark and the encode are far smaller than a frame's change).
    for i, frame in enumerate(played):
        near = range(max(0, i - 3), min(len(source), i + 4))
        assert min(near, key=lambda j: float(np.abs(source[j] - frame).mean())) == i, f"frame {i}"


def test_failed_chunk_is_retried_alone(worker_app, stores, db, owner_id, clip):
    """A chunk whose encode fails (ffmpeg refuses the plan's preset) is retried with backoff
    and redone alone; the video's other parts are encoded once."""
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    assert run_once(worker_app, "planner")
    sql(db, "UPDATE video_encodes SET plan = JSON_SET(plan, '$.settings.preset', 'no-such-preset') "
            "WHERE video_id = %s", (vid,))
    sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE subject = %s "
            "AND kind = 'video.audio'", (vid,))
    assert run_once(worker_app, "test-worker")           # the first chunk (360p) fails
    failed = query(db, "SELECT id, payload, status, attempts, last_error FROM jobs WHERE subject = %s "
                       "AND kind = 'video.chunk' AND attempts = 1", (vid,), one=True)
    assert (failed["status"], failed["attempts"]) == ("queued", 1) and failed["last_error"], failed
    sql(db, "UPDATE video_encodes SET plan = JSON_SET(plan, '$.settings.preset', %s) WHERE video_id = %s",
        (worker_app.config["X264_PRESET"], vid))
    sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) WHERE subject = %s", (vid,))
    run_video(worker_app, db, vid)
    rows = chunks(db, vid)
    which = json.loads(failed["payload"])
    assert [(c["rung"], c["chunk_index"]) for c in rows if c["encodes"] == 2] == [(which["rung"], which["chunk"])]
    assert all(c["done"] and c["encodes"] in (1, 2) for c in rows)
    assert query(db, "SELECT attempts FROM jobs WHERE id = %s", (failed["id"],), one=True)["attempts"] == 2
    assert video(db, vid) == {"status": "ready", "status_message": ""}


def test_audio_finishing_last_publishes_the_video(worker_app, stores, db, owner_id, tmp_path):
    """Whichever part completes last publishes: here every chunk is done before the audio
    (as when the audio's worker was killed and its job came back after its lease). Found by
    the fault-injection matrix: the audio's completion judged "audio done?" from the plan row
    read before it recorded its own result, so the video stayed processing for ever."""
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, make_clip(tmp_path / "c.mp4", seconds=4, size=ONE_RUNG).read_bytes())
    assert run_once(worker_app, "planner")
    sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE subject = %s "
            "AND kind = 'video.audio'", (vid,))
    while run_once(worker_app, "test-worker", ("video.chunk",)):
        pass
    assert all(c["done"] for c in chunks(db, vid)) and video(db, vid)["status"] == "processing"
    sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) WHERE subject = %s", (vid,))
    run_video(worker_app, db, vid)
    assert video(db, vid) == {"status": "ready", "status_message": ""}
    assert renditions(db, vid) == (["360p"], True)
    meta = json.loads(query(db, "SELECT metadata FROM video_media WHERE video_id = %s", (vid,), one=True)["metadata"])
    assert meta["audio"] is not None


def test_video_without_audio_is_published_by_its_lowest_rung(worker_app, stores, db, owner_id, tmp_path):
    silent = make_clip(tmp_path / "silent.mp4", seconds=4, size=ONE_RUNG, audio=False).read_bytes()
    vid = queue_video(db, stores, owner_id, silent)
    assert run_video(worker_app, db, vid) == 1 + 1 + 1 + 1    # planning, the 360p chunk, storyboard, reference: no audio
    assert video(db, vid) == {"status": "ready", "status_message": ""}
    meta = json.loads(query(db, "SELECT metadata FROM video_media WHERE video_id = %s", (vid,), one=True)["metadata"])
    assert [r["name"] for r in meta["renditions"]] == ["360p"] and meta["audio"] is None
    assert assert_sealed_only(stores["watermark"], db, worker_app.config["MEDIA_MASTER_KEY"], vid) == 2 * 2


def test_a_dead_chunk_stops_its_sibling_running_on_another_worker(worker_app, stores, db, owner_id, clip,
                                                                 service_config, monkeypatch):
    """Two workers on a video that is not playable yet: one's chunk exceeds its bound (dead
    at once), the other's sibling chunk is still encoding. The video fails with the reason;
    the sibling loses its lease at its next renewal (the video failed), its ffmpeg is
    killed, it records and publishes nothing and what it stored goes: the failure's
    message stays and no object of the video is left."""
    from svcommon import ffmpeg as ff
    from svcommon.jobworker import run_once as run_with
    from watermark_svc import create_app
    from watermark_svc.extensions import db as wdb
    vid = queue_video(db, stores, owner_id, clip)
    # The doomed one surely over its 3-s budget: x264's slowest preset (on a fast host, one
    # thread, 60 frames of 360p noise took 1.8 s with veryslow, 11.5 s with placebo).
    plan_in_chunks(worker_app, db, vid, preset="placebo")
    sql(db, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE subject = %s "
            "AND kind = 'video.audio'", (vid,))
    # The sibling's first ffmpeg is held stopped (SIGSTOP) mid-encode, so it is surely still
    # encoding when the video fails however fast this machine is; only its lease can end it.
    frozen: list = []
    real_spawn = ff.spawn

    def spawn(argv, bounds, **kw):
        proc = real_spawn(argv, bounds, **kw)
        if threading.current_thread().name == "sibling" and os.path.basename(argv[0]) == "ffmpeg" and not frozen:
            os.killpg(proc.pid, signal.SIGSTOP)
            frozen.append(proc)
        return proc
    monkeypatch.setattr(ff, "spawn", spawn)
    leases: list = []
    sibling = threading.Thread(target=run_with, args=(worker_app, wdb, recording(leases), "sibling"), name="sibling")
    sibling.start()
    deadline = time.monotonic() + 120
    while not frozen:
        assert sibling.is_alive() and time.monotonic() < deadline
        time.sleep(0.1)
    running = query(db, "SELECT id, payload, kind FROM jobs WHERE subject = %s AND lease_owner = 'sibling'",
                    (vid,), one=True)
    assert running and running["kind"] == "video.chunk", running
    # The other worker: tight bounds, so its chunk (the next 360p one) is stopped and dead at once.
    bounded = create_app({**service_config, "WORKER_LEASE_SECONDS": 3, "WORKER_RETRY_BASE_SECONDS": 1,
                          "PROBE_TIMEOUT_SECONDS": 3, "MEDIA_CPU_PER_MEDIA_SECOND": 0.1})
    from watermark_svc.jobs import run_once
    assert run_once(bounded, "doomed")
    dead = query(db, "SELECT payload, attempts FROM jobs WHERE subject = %s AND status = 'dead'", (vid,))
    assert len(dead) == 1 and json.loads(dead[0]["payload"]) != json.loads(running["payload"]), dead
    sibling.join(60)                                 # held stopped, it could never finish on its own
    assert not sibling.is_alive()
    assert leases and leases[0].lost.is_set()        # stopped by its lease, not by finishing
    assert frozen[0].wait(10) == -signal.SIGKILL     # its ffmpeg killed (a stopped process can't exit itself)
    st = video(db, vid)
    assert st["status"] == "failed" and "limit" in st["status_message"], st
    which = json.loads(running["payload"])
    assert query(db, "SELECT result FROM video_chunks WHERE video_id = %s AND rung = %s AND chunk_index = %s",
                 (vid, which["rung"], which["chunk"]), one=True)["result"] is None
    assert query(db, "SELECT COUNT(*) AS n FROM video_media WHERE video_id = %s", (vid,), one=True)["n"] == 0
    assert query(db, "SELECT id FROM jobs WHERE id = %s", (running["id"],), one=True) is None   # dropped
    assert list(stores["watermark"].list(media_prefix(vid))) == []
    assert not any(p.startswith(f"sv-chunk-{vid[:8]}") for p in os.listdir(worker_app.config["WORK_DIR"]))


@pytest.mark.parametrize("order", ["dies_first", "dies_last"])
def test_a_dead_higher_rung_chunk_on_a_playable_video(worker_app, stores, db, owner_id, clip, order):
    """A 480p chunk that cannot be made on a video already playable at 360p: the video stays
    ready, the note saying not every quality could be made stays (its sibling's completion
    does not overwrite it with a progress line that can never reach 100 %), and the
    published ladder is final (ladder_complete: streaming-svc may cache it) once nothing
    else can join it, whichever of the two finishes last."""
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    plan_in_chunks(worker_app, db, vid)
    run_video(worker_app, db, vid, until=lambda: video(db, vid)["status"] == "ready")
    assert renditions(db, vid) == (["360p"], False)
    c0, c1 = (query(db, "SELECT id FROM jobs WHERE subject = %s AND kind = 'video.chunk' "
                        "AND JSON_VALUE(payload, '$.rung') = '480p' AND JSON_VALUE(payload, '$.chunk') = %s",
                    (vid, i), one=True)["id"] for i in (0, 1))
    hold = "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE subject = %s AND id <> %s"
    release = "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) WHERE subject = %s"
    preset = worker_app.config["X264_PRESET"]

    def doomed_runs():
        sql(db, "UPDATE jobs SET max_attempts = 1 WHERE id = %s", (c0,))
        sql(db, "UPDATE video_encodes SET plan = JSON_SET(plan, '$.settings.preset', 'no-such-preset') "
                "WHERE video_id = %s", (vid,))
        sql(db, hold, (vid, c0))
        assert run_once(worker_app, "test-worker")
        assert query(db, "SELECT status FROM jobs WHERE id = %s", (c0,), one=True)["status"] == "dead"
        sql(db, "UPDATE video_encodes SET plan = JSON_SET(plan, '$.settings.preset', %s) WHERE video_id = %s",
            (preset, vid))
        sql(db, release, (vid,))

    def sibling_runs():
        sql(db, hold, (vid, c1))
        assert run_once(worker_app, "test-worker")
        assert query(db, "SELECT status FROM jobs WHERE id = %s", (c1,), one=True)["status"] == "done"
        sql(db, release, (vid,))

    for step in ((doomed_runs, sibling_runs) if order == "dies_first" else (sibling_runs, doomed_runs)):
        step()
    run_video(worker_app, db, vid)                   # the rest (the forensic reference)
    st = video(db, vid)
    assert st["status"] == "ready" and st["status_message"].startswith("not every quality could be made: "), st
    assert renditions(db, vid) == (["360p"], True)


def test_a_lapse_on_a_chunks_final_attempt_cleans_up_and_fails_the_video(worker_app, stores, db, owner_id, clip):
    """The workers running a chunk of a not-yet-playable video died on its final attempt:
    the next worker dead-letters it, removes the video's outputs (stills, done parts) and
    fails the video, its waiting parts dropped."""
    from svcommon.jobqueue import claim
    from watermark_svc.extensions import db as wdb
    from watermark_svc.jobs import run_once
    vid = queue_video(db, stores, owner_id, clip)
    plan_in_chunks(worker_app, db, vid)
    assert list(stores["watermark"].list(media_prefix(vid)))                       # poster and thumb
    sql(db, "UPDATE jobs SET max_attempts = 1 WHERE subject = %s AND kind = 'video.chunk'", (vid,))
    with worker_app.app_context():
        job = claim(wdb, "crashed", 3, ["video.chunk"]).job                        # ... and it died
    assert job.subject == vid
    sql(db, "UPDATE jobs SET lease_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s", (job.id,))
    assert run_once(worker_app, "rescuer", ["video.chunk"])
    row = query(db, "SELECT status, attempts, last_error FROM jobs WHERE id = %s", (job.id,), one=True)
    assert (row["status"], row["attempts"]) == ("dead", 1) and "stopped responding" in row["last_error"], row
    assert video(db, vid) == {"status": "failed", "status_message": "processing failed repeatedly; please re-upload"}
    assert list(stores["watermark"].list(media_prefix(vid))) == []
    assert query(db, "SELECT COUNT(*) AS n FROM jobs WHERE subject = %s AND status = 'queued'",
                 (vid,), one=True)["n"] == 0
