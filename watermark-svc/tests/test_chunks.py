"""Chunked encoding (media/chunks.py): chunks encoded on their own concatenate into the
stream a whole-video run makes — same inits, segment durations, fragment numbers and
timestamps — watermarked with global segment indices, readable by the detector."""
from __future__ import annotations

import hashlib
import struct
import subprocess
import threading
from fractions import Fraction

import pytest

from svcommon.mp4boxes import walk_bytes
from watermark_svc.forensics import read_soft_bits
from watermark_svc.media import ffmpeg_cmd, process
from watermark_svc.media.chunks import Chunk, encode_chunk, plan_chunks
from watermark_svc.media.errors import ProcessingError
from watermark_svc.media.ffmpeg_cmd import EncodeSettings
from watermark_svc.media.ladder import Rung
from watermark_svc.media.plan import JobPlan, plan_job
from watermark_svc.media.probe import probe
from watermark_svc.media.procs import ProcessGroup

try:
    from . import media_helpers as mh
except ImportError:
    import media_helpers as mh

SECRET = b"test-secret-0123456789abcdef0123"
VIDEO_ID = "vid-chunks"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 8 s 480p source processed whole (one chunk) and in 1-segment chunks."""
    d = tmp_path_factory.mktemp("chunks")
    src = mh.make_clip(d / "src.mp4", 854, 480, 8)
    whole = process(src, d / "whole", VIDEO_ID, SECRET, segments_per_chunk=1000)
    chunked = process(src, d / "chunked", VIDEO_ID, SECRET, segments_per_chunk=1)
    return src, d, whole, chunked


def _fragments(path):
    """(mfhd sequence, tfdt, sidx earliest presentation time) of a segment file."""
    data = path.read_bytes()
    seq = tfdt = ept = None
    for box in walk_bytes(data):
        if box.kind == b"sidx":
            wide = data[box.body] == 1
            ept = struct.unpack_from(">Q" if wide else ">I", data, box.body + 12)[0]
        if box.kind == b"moof":
            for child in walk_bytes(data, box.body, box.end):
                if child.kind == b"mfhd":
                    seq = struct.unpack_from(">I", data, child.body + 4)[0]
                if child.kind == b"traf":
                    for t in walk_bytes(data, child.body, child.end):
                        if t.kind == b"tfdt":
                            wide = data[t.body] == 1
                            tfdt = struct.unpack_from(">Q" if wide else ">I", data, t.body + 4)[0]
    return seq, tfdt, ept


@pytest.mark.parametrize("duration", [0.5, 1.9, 4.0, 8.0, 12.0, 31.0, 61.0, 3600.0])
@pytest.mark.parametrize("per_chunk", [1, 2, 15])
def test_plan_chunks_covers_the_video_and_never_leaves_a_chunk_empty(duration, per_chunk):
    plan = JobPlan(fps=Fraction(30), frames_per_segment=60, mezz_width=640, mezz_height=360,
                   rungs=(Rung("360p", 640, 360, 800, 856, 1600),))
    chunks = plan_chunks(plan, duration, per_chunk)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].first_segment == 0 and chunks[-1].segment_count is None
    for a, b in zip(chunks, chunks[1:]):
        assert a.segment_count == per_chunk and b.first_segment == a.first_segment + per_chunk
    # The open last chunk starts a segment and a second before the estimated end (or at 0).
    expected_frames = int(duration * 30)
    assert chunks[-1].first_frame == 0 or chunks[-1].first_frame + 60 + 30 <= expected_frames


@pytest.mark.parametrize("lead_s, per_chunk", [(0.0, 15), (30.0, 15), (31.0, 62), (600.0, 1200)])
def test_chunks_are_lengthened_where_key_frames_are_far_apart(lead_s, per_chunk):
    """A chunk's decode starts at the key frame before it. With one key frame per 10 min,
    30-s chunks made every chunk decode up to 10 min for 30 s of frames; with one for the
    whole film, chunk k decoded the film from its start up to k x 30 s (quadratic). Past
    30 s of lead, chunks last four times the lead."""
    plan = JobPlan(fps=Fraction(30), frames_per_segment=60, mezz_width=640, mezz_height=360,
                   rungs=(Rung("360p", 640, 360, 800, 856, 1600),), seek_lead_s=lead_s)
    chunks = plan_chunks(plan, 3600.0, 15)
    assert len(chunks) > 1 and [c.segment_count for c in chunks[:-1]] == [per_chunk] * (len(chunks) - 1)


def test_a_video_with_one_key_frame_is_one_chunk(tmp_path):
    """The probe measures the lead (in MP4 the stretch back to a key frame, here the whole
    video) and the plan makes the whole of such a video one chunk; its frames are exact."""
    src = tmp_path / "one-key-frame.mp4"
    mh.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
            "-t", "40", "-c:v", "libx264", "-preset", "ultrafast", "-g", "100000", "-x264-params", "scenecut=0",
            str(src)])
    info = probe(src)
    assert info.seek_lead_s == pytest.approx(40.0, abs=0.2)
    assert len(plan_chunks(plan_job(info), info.duration_s, 1)) == 1
    meta = process(src, tmp_path / "out", VIDEO_ID, SECRET, preset="ultrafast", segments_per_chunk=1)
    stream = mh.concat_variant_stream(tmp_path / "out", meta["renditions"][0]["name"], [0] * meta["segment_count"],
                                      tmp_path / "s.mp4")
    assert mh.count_frames(stream) == 1200

def test_chunked_run_is_the_whole_run_split(runs):
    src, d, whole, chunked = runs
    assert chunked["segment_count"] == whole["segment_count"] == 4
    assert chunked["segment_durations"] == whole["segment_durations"]
    assert [r["name"] for r in chunked["renditions"]] == ["480p", "360p"]
    for rw, rc in zip(whole["renditions"], chunked["renditions"]):
        base_w, base_c = d / "whole" / "video" / rw["name"], d / "chunked" / "video" / rc["name"]
        # Inits depend on nothing a chunk changes: the chunked run's (checked equal across
        # its 3 chunks as they were written) is the whole run's, byte for byte.
        assert (base_c / "init.mp4").read_bytes() == (base_w / "init.mp4").read_bytes()
        assert rc["codecs"] == rw["codecs"] and rc["init_size"] == rw["init_size"]
        for v in ("a", "b"):
            names = sorted(p.name for p in (base_c / v).iterdir())
            assert names == [f"{i:05d}.m4s" for i in range(4)]
            assert [_fragments(base_c / v / n) for n in names] == [_fragments(base_w / v / n) for n in names]
            assert [(base_c / v / n).stat().st_size for n in names] == rc["segments"][v]
    assert not [p for p in (d / "chunked").rglob(".*")]          # no chunk work left over


@pytest.mark.parametrize("rung", ["480p", "360p"])
def test_concatenated_chunks_play_as_one_stream(runs, tmp_path, rung):
    _, d, _, chunked = runs
    n = chunked["segment_count"]
    for bits in ([1] * n, [0, 1, 1, 0]):
        stream = mh.concat_variant_stream(d / "chunked", rung, bits, tmp_path / f"{rung}.mp4")
        assert mh.decode_errors(stream) == ""
        frames = mh.ffprobe_json(stream, "-select_streams", "v:0", "-show_frames",
                                 "-show_entries", "frame=pts")["frames"]
        pts = [f["pts"] for f in frames]
        assert len(pts) == 240
        step = pts[1] - pts[0]
        assert step > 0 and all(b - a == step for a, b in zip(pts, pts[1:]))     # continuous


def test_a_and_b_differ_in_every_segment(runs):
    _, d, _, chunked = runs
    for r in chunked["renditions"]:
        base = d / "chunked" / "video" / r["name"]
        for i in range(chunked["segment_count"]):
            assert (base / "a" / f"{i:05d}.m4s").read_bytes() != (base / "b" / f"{i:05d}.m4s").read_bytes()


def test_detector_reads_a_chunk_encoded_stream(runs, tmp_path):
    # Segment i carries pattern i whichever chunk encoded it: the detector, which knows
    # nothing of chunks, reads every bit, across the chunk boundaries.
    src, d, _, chunked = runs
    bits = [1, 0, 0, 1]
    stream = mh.concat_variant_stream(d / "chunked", "480p", bits, tmp_path / "session.mp4")
    _assert_leak_reads(stream, src, bits, tmp_path, "chunk-encoded 480p")


def _assert_leak_reads(stream, src, bits, tmp_path, label):
    """A 360p CRF-28 re-encode of the session stream still gives every bit, clearly."""
    leak = mh.leak_copy(stream, tmp_path / "leak.mp4", 360, crf=28)
    got = read_soft_bits(str(leak), str(src), VIDEO_ID, SECRET)
    print(f"\n{label} -> 360p CRF28: z = {[round(b.z, 1) for b in got]}")
    assert [1 if b.z > 0 else 0 for b in got] == bits
    assert min(abs(b.z) for b in got) > 5.0


def _raw_frames(argv, size):
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    return [hashlib.sha256(out[i:i + size]).hexdigest() for i in range(0, len(out), size)]


# kind -> (frame rate, file, extra inputs, encoding options). Key frames 8 s apart in the MP4s (seeks decode
# forward). "audio_first": the video starts 22 ms after the audio (AAC priming kept by an
# offset), a fraction of a frame off the output grid. The MPEG-TS (timestamps from ~1.4 s,
# audio first) and MPEG-PS have key frames every 1.5 and 0.5 s, never on a chunk's first
# frame, and seeks there land on any packet.
X264 = ["-c:v", "libx264", "-preset", "veryfast"]
AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
CHUNK_DECODE_SOURCES = {
    "cfr30": ("30", "src.mp4", [], [*X264, "-g", "250"]),
    "ntsc": ("30000/1001", "src.mp4", [], [*X264, "-g", "250"]),
    "vfr": ("30", "src.mp4", [], ["-vf", "setpts='PTS+0.013*sin(N)/TB'", "-fps_mode", "vfr", *X264, "-g", "250"]),
    "audio_first": ("30", "src.mp4", AUDIO, [*X264, "-g", "250", "-c:a", "aac", "-output_ts_offset", "3"]),
    "mpegts": ("30", "src.ts", AUDIO, [*X264, "-g", "45", "-c:a", "aac"]),
    "mpeg_ps": ("30", "src.mpg", AUDIO, ["-c:v", "mpeg2video", "-g", "15", "-q:v", "4", "-c:a", "mp2"]),
    # Legacy and open containers, sought with a margin as TS and PS are: an OBS/streaming
    # recording (FLV, key frames every 2 s), Windows Media (ASF), Ogg Theora.
    "flv": ("30", "src.flv", AUDIO, [*X264, "-g", "60", "-c:a", "aac"]),
    "asf": ("25", "src.wmv", AUDIO, ["-c:v", "wmv2", "-b:v", "1M", "-c:a", "wmav2"]),
    "ogg": ("25", "src.ogv", AUDIO, ["-c:v", "libtheora", "-q:v", "6", "-c:a", "libvorbis"]),
    # 60 pictures/s woven into 30 frames of two fields; deinterlaced from each frame's
    # fields and its neighbours: a chunk's first frame too.
    "interlaced": ("30", "src.mp4", [], ["-vf", "tinterlace=mode=interleave_top,setfield=tff", *X264,
                                         "-flags", "+ilme+ildct", "-x264-params", "tff=1"]),
}
SOURCE_RATE = {"interlaced": "60"}          # testsrc2's rate where it is not the output's


@pytest.mark.parametrize("kind", list(CHUNK_DECODE_SOURCES))
def test_chunk_decode_picks_the_frames_a_whole_decode_does(tmp_path, kind):
    """Output frame k of a chunk from frame s is frame s + k of a decode from the start, and
    a chunk to the end ends where that decode does (once: frame s shown twice, s - 1 lost,
    when the source's frames sat a fraction of a frame off the grid; a frame lost or a chunk
    shifted by one in a TS, whose seeks land on any packet)."""
    rate, name, inputs, encode = CHUNK_DECODE_SOURCES[kind]
    src = tmp_path / name
    mh.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
            f"testsrc2=size=320x240:rate={SOURCE_RATE.get(kind, rate)}",
            *inputs, "-t", "8", *encode, str(src)])
    info = probe(src)
    margin, fields = info.seek_margin_s, info.interlaced
    assert fields == (kind == "interlaced")
    fps, size = Fraction(rate), 320 * 240 * 3 // 2
    whole = _raw_frames(ffmpeg_cmd.decode_raw_cmd(str(src), 320, 240, fps, deinterlace=fields), size)
    assert len(whole) >= 8 * fps
    for start in (60, 120, 180):
        part = _raw_frames(ffmpeg_cmd.decode_raw_cmd(str(src), 320, 240, fps, start, 60, margin, fields), size)
        assert part == whole[start:start + 60], f"chunk at frame {start}"
    end = _raw_frames(ffmpeg_cmd.decode_raw_cmd(str(src), 320, 240, fps, 150, None, margin, fields), size)
    assert end == whole[150:]


def test_a_chunk_with_a_different_init_is_refused(tmp_path):
    src = mh.make_clip(tmp_path / "s.mp4", 640, 360, 6, audio=False)
    info = probe(src)
    plan = plan_job(info)
    settings = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment)
    out = tmp_path / "out"
    (out / "video" / "360p").mkdir(parents=True)
    (out / "video" / "360p" / "init.mp4").write_bytes(b"another encoder's init")
    group = ProcessGroup(tmp_path / "logs")
    try:
        with pytest.raises(ProcessingError, match="init segment differs"):
            encode_chunk(src, plan, settings, SECRET, VIDEO_ID, 1.0, plan.rungs,
                         Chunk(1, 1, 1, plan.frames_per_segment), out, group)
    finally:
        group.kill_all()
    assert not list((out / "video" / "360p").glob("*/*.m4s"))     # nothing half-placed


def test_two_workers_share_one_videos_chunks(runs, tmp_path):
    # Chunks encoded at the same time by two workers (own process groups) into one tree, in
    # reverse order, give the whole run's inits, numbering and timestamps.
    src, d, whole, _ = runs
    info = probe(src)
    plan = plan_job(info)
    settings = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment)
    chunks = plan_chunks(plan, info.duration_s, 2)
    assert len(chunks) == 2
    out, results, errors = tmp_path / "shared", {}, []

    def worker(chunk):
        group = ProcessGroup(tmp_path / f"logs{chunk.index}")
        try:
            results[chunk.index] = encode_chunk(src, plan, settings, SECRET, VIDEO_ID, 1.0, plan.rungs,
                                                chunk, out, group)
        except BaseException as exc:     # reported by the test thread
            errors.append(exc)
        finally:
            group.kill_all()

    threads = [threading.Thread(target=worker, args=(c,)) for c in reversed(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == [0, 1]
    assert results[0].durations + results[1].durations == whole["segment_durations"]
    for r in whole["renditions"]:
        base_w, base_s = d / "whole" / "video" / r["name"], out / "video" / r["name"]
        assert (base_s / "init.mp4").read_bytes() == (base_w / "init.mp4").read_bytes()
        for v in ("a", "b"):
            names = sorted(p.name for p in (base_s / v).iterdir())
            assert names == [f"{i:05d}.m4s" for i in range(4)]
            assert [_fragments(base_s / v / n) for n in names] == [_fragments(base_w / v / n) for n in names]


def test_lowest_rung_alone_is_read_by_the_detector(runs, tmp_path):
    # The task that makes a video playable encodes the lowest rung on its own, decoded and
    # watermarked at that rung's size with the resampled pattern: same init and timing as
    # the whole run's rung, and the detector (which knows nothing of it) reads every bit.
    src, d, whole, _ = runs
    info = probe(src)
    plan = plan_job(info)
    low = plan.rungs[-1]
    assert low.name == "360p" and plan.mezz_height == 480
    settings = EncodeSettings(fps=plan.fps, frames_per_segment=plan.frames_per_segment)
    group = ProcessGroup(tmp_path / "logs")
    try:
        for chunk in plan_chunks(plan, info.duration_s, 2):
            encode_chunk(src, plan, settings, SECRET, VIDEO_ID, 1.0, [low], chunk, tmp_path / "low", group)
    finally:
        group.kill_all()
    base = tmp_path / "low" / "video" / "360p"
    assert (base / "init.mp4").read_bytes() == (d / "whole" / "video" / "360p" / "init.mp4").read_bytes()
    bits = [0, 1, 1, 0]
    stream = mh.concat_variant_stream(tmp_path / "low", "360p", bits, tmp_path / "session.mp4")
    assert mh.decode_errors(stream) == "" and mh.count_frames(stream) == 240
    _assert_leak_reads(stream, src, bits, tmp_path, "lowest rung alone, 360p")
