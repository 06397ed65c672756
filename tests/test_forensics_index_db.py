"""The catalogue index in the real database (migration 027, forensics/indexdb.py): the
worker indexes a video when it stores its forensic reference; a video processed before the
index existed is indexed by the next trace's candidate search; deleting a video takes its
rows; an attacked copy's lookup votes for the video."""
from __future__ import annotations

import subprocess

import pytest

from tests.support.media import make_clip, make_texture_clip
from tests.support.videos import make_ready_video, sql

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def indexed_video(live_stack, worker_app, mdb, stores, owner_id, tmp_path_factory):
    d = tmp_path_factory.mktemp("forensics-index-db")
    clip = make_texture_clip(d / "clip.mp4", seed=4102)      # no other test video looks like it
    vid = make_ready_video(worker_app, mdb, stores, owner_id, clip.read_bytes(), title="index clip")
    leak = d / "leak.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "6.2", "-i", str(clip), "-t", "20",
                    "-vf", "crop=iw*0.95:ih*0.95,fps=25,scale=-2:180", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "30", str(leak)], check=True)
    return {"video_id": vid, "leak": leak, "dir": d}


def _catalogue(worker_app, stores, work):
    from watermark_svc.extensions import db, filestore
    from watermark_svc.forensics.dbcatalogue import DbCatalogue
    return DbCatalogue(db, filestore(worker_app), work)


def test_the_reference_job_indexes_the_video(indexed_video, mdb):
    row = sql(mdb, "SELECT version, windows FROM forensic_indexed_videos WHERE video_id = %s",
              (indexed_video["video_id"],), one=True)
    assert row and row["version"] == "sig1" and row["windows"] > 40
    n = sql(mdb, "SELECT COUNT(*) AS n FROM forensic_signatures WHERE video_id = %s", (indexed_video["video_id"],), one=True)
    assert n["n"] > 40 * 3


def test_a_video_processed_before_the_index_is_indexed_by_the_next_search(indexed_video, worker_app, stores, mdb, tmp_path):
    vid = indexed_video["video_id"]
    # As a video processed before migration 027: no rows, no mark.
    sql(mdb, "DELETE FROM forensic_signatures WHERE video_id = %s", (vid,))
    sql(mdb, "DELETE FROM forensic_indexed_videos WHERE video_id = %s", (vid,))
    from watermark_svc.forensics import candidates
    from watermark_svc.forensics.timing import suspect_fingerprints
    with worker_app.app_context():
        catalogue = _catalogue(worker_app, stores, tmp_path)
        fps = catalogue.geometry(vid).fps
        found = candidates.search(catalogue, fps, lambda f: suspect_fingerprints(str(indexed_video["leak"]), f))
        assert found.report["backfilled_videos"] >= 1
        assert vid in found.video_ids[:3], found.report
        top = found.report["shortlist"][0]
        assert top["video_id"] == vid and abs(top["offset_seconds"] - 6.2) <= 0.75, found.report
        again = candidates.search(catalogue, fps, lambda f: suspect_fingerprints(str(indexed_video["leak"]), f))
        assert again.report["backfilled_videos"] == 0
    assert sql(mdb, "SELECT 1 AS x FROM forensic_indexed_videos WHERE video_id = %s", (vid,), one=True)


def test_deleting_a_video_takes_its_index_rows(worker_app, mdb, stores, owner_id, tmp_path):
    clip = make_clip(tmp_path / "gone.mp4", seconds=12, size="320x180", audio=False)
    vid = make_ready_video(worker_app, mdb, stores, owner_id, clip.read_bytes(), title="index gone")
    assert sql(mdb, "SELECT COUNT(*) AS n FROM forensic_signatures WHERE video_id = %s", (vid,), one=True)["n"] > 0
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))
    assert sql(mdb, "SELECT COUNT(*) AS n FROM forensic_signatures WHERE video_id = %s", (vid,), one=True)["n"] == 0
    assert sql(mdb, "SELECT 1 AS x FROM forensic_indexed_videos WHERE video_id = %s", (vid,), one=True) is None
