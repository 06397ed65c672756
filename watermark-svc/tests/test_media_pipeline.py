"""End-to-end: the A/B watermarked CMAF ladder, its quality cost, and that the
forensic detector reads every A/B bit back from a downscaled, re-encoded leak."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from watermark_svc.forensics import read_soft_bits
from watermark_svc.media import (InvalidMedia, MediaError, ProcessingError, choose_ladder,
                                 probe, process)

try:
    from . import media_helpers as mh
except ImportError:
    import media_helpers as mh

SECRET = b"test-secret-0123456789abcdef0123"
VIDEO_ID = "vid-123"


def _run(src, out, **kw):
    """The pipeline with one x264 thread, as the worker's chunk jobs run (X264_THREADS): with
    several, x264's rate control is not deterministic, and the margins these tests measure on
    its output would move from run to run (test_forensics_trace: a leak's median |z| 3.43-4.10)."""
    events = []
    kw.setdefault("x264_threads", 1)
    meta = process(src, out, VIDEO_ID, SECRET,
                   progress=lambda pct, step: events.append((pct, step)), **kw)
    return meta, events


@pytest.fixture(scope="module")
def job480(tmp_path_factory):
    d = tmp_path_factory.mktemp("p480")
    src = mh.make_clip(d / "src.mp4", 854, 480, 12)
    meta, events = _run(src, d / "out")
    return src, d / "out", meta, events


@pytest.fixture(scope="module")
def job720(tmp_path_factory):
    d = tmp_path_factory.mktemp("p720")
    src = mh.make_clip(d / "src.mp4", 1280, 720, 8, audio=False, noise=1)
    meta, _ = _run(src, d / "out")
    return src, d / "out", meta


# --- outputs -----------------------------------------------------------------

def test_layout_and_metadata(job480):
    src, out, meta, _ = job480
    assert meta["segment_count"] == 6 and meta["fps"] == "30/1"
    assert [r["name"] for r in meta["renditions"]] == ["480p", "360p"]
    for r in meta["renditions"]:
        base = out / "video" / r["name"]
        assert re.fullmatch(r"avc1\.64[0-9a-f]{4}", r["codecs"])
        assert (base / "init.mp4").stat().st_size == r["init_size"]
        for v in ("a", "b"):
            files = sorted((base / v).glob("*.m4s"))
            assert [f.name for f in files] == [f"{i:05d}.m4s" for i in range(6)]
            assert [f.stat().st_size for f in files] == r["segments"][v]
        assert r["bandwidth"] >= r["average_bandwidth"] > 0
    audio = meta["audio"]
    assert audio["codecs"] == "mp4a.40.2" and (out / "audio" / "init.mp4").is_file()
    assert len(list((out / "audio").glob("*.m4s"))) == len(audio["segment_sizes"]) >= 5
    for still in ("poster.jpg", "thumb.jpg"):
        assert (out / still).read_bytes()[:3] == b"\xff\xd8\xff"
    leftovers = [p.name for p in out.parent.iterdir() if ".partial-" in p.name]
    assert leftovers == [] and not (out / "work").exists()
    assert meta["watermark"]["pattern_width"] == 854


def test_progress_reports_every_step_in_order(job480):
    events = job480[3]
    steps = [s for _, s in events]
    order = [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]
    assert order == ["probe", "audio", "encode", "thumbnails", "done"]
    pcts = [p for p, _ in events]
    assert pcts == sorted(pcts) and pcts[0] == 0 and pcts[-1] == 100
    assert len({p for p, s in events if s == "encode"}) > 20      # live, not two jumps


@pytest.mark.parametrize("job", ["job480", "job720"])
def test_ladder_never_above_source(job, request):
    src, out, meta = request.getfixturevalue(job)[:3]
    p = probe(src)
    names = sorted(d.name for d in (out / "video").iterdir())
    assert names == sorted(r.name for r in choose_ladder(p))
    for r in meta["renditions"]:
        assert r["height"] <= p.height and r["width"] <= p.width
    expected = {"job480": ["480p", "360p"], "job720": ["720p", "480p", "360p"]}[job]
    assert [r["name"] for r in meta["renditions"]] == expected


@pytest.mark.parametrize("job", ["job480", "job720"])
def test_ab_segments_interchangeable(job, request, tmp_path):
    src, out, meta = request.getfixturevalue(job)[:3]
    n = meta["segment_count"]
    durations = meta["segment_durations"]
    assert all(abs(d - 2.0) < 1e-3 for d in durations[:-1]) and 0 < durations[-1] <= 2.0
    total_frames = round(sum(durations) * 30)
    rng = random.Random(7)
    for r in meta["renditions"]:
        base = out / "video" / r["name"]
        assert not (base / "a" / "init.mp4").exists()       # one init for both
        assert len(r["segments"]["a"]) == len(r["segments"]["b"]) == n
        # One session's stream: a random mix of A and B segments after the shared init.
        bits = [rng.randint(0, 1) for _ in range(n)]
        bits[0], bits[1] = 1, 0                             # make sure both occur
        mixed = mh.concat_variant_stream(out, r["name"], bits, tmp_path / f"{r['name']}.mp4")
        assert mh.decode_errors(mixed) == ""
        assert mh.count_frames(mixed) == total_frames
        info = mh.ffprobe_json(mixed, "-show_streams")["streams"][0]
        assert (info["width"], info["height"]) == (r["width"], r["height"])


def test_invalid_input_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    out = tmp_path / "job" / "out"
    with pytest.raises(InvalidMedia):
        process(bad, out, VIDEO_ID, SECRET)
    assert not out.exists() and list((tmp_path / "job").iterdir()) == []


def test_encoder_failure_leaves_nothing(tmp_path):
    src = mh.make_clip(tmp_path / "s.mp4", 640, 360, 3, audio=False)
    out = tmp_path / "job" / "out"
    with pytest.raises(ProcessingError, match="encode"):
        process(src, out, VIDEO_ID, SECRET, preset="no-such-preset")
    assert not out.exists() and list((tmp_path / "job").iterdir()) == []


def test_refuses_non_empty_output_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(MediaError, match="not empty"):        # checked before probing
        process(tmp_path / "any.mp4", out, VIDEO_ID, SECRET)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# --- quality -------------------------------------------------------------------

def _top_rung_stream(out, meta, dest, variant_bit=1):
    r = meta["renditions"][0]["name"]
    return mh.concat_variant_stream(out, r, [variant_bit] * meta["segment_count"], dest)


# ffmpeg 5.1's gradients picks its points and colours at random unless given a seed and every
# colour: this one is the same clip on every run.
GRADIENTS = "gradients=seed=7:nb_colors=2:c0=0x3a5f8c:c1=0xc8a070:speed=0.01"


def test_psnr_against_unwatermarked_encode(tmp_path):
    # Smooth, slowly moving gradients (sky, walls, skin: where a mark would show).
    # x264 codes them almost losslessly, so the difference between the watermarked
    # and the plain encode is the watermark itself, not encoder noise.
    src = mh.make_clip(tmp_path / "grad.mp4", 640, 360, 6, source=GRADIENTS,
                       noise=0, audio=False)
    wm_meta, _ = _run(src, tmp_path / "wm")
    plain_meta, _ = _run(src, tmp_path / "plain", strength=0.0)
    for bit in (1, 0):
        wm = _top_rung_stream(tmp_path / "wm", wm_meta, tmp_path / f"wm{bit}.mp4", bit)
        plain = _top_rung_stream(tmp_path / "plain", plain_meta, tmp_path / "plain.mp4")
        q = mh.psnr(wm, plain)
        print(f"\nPSNR watermarked ({'A' if bit else 'B'}) vs unwatermarked encode, 360p: "
              f"Y {q['y']:.2f} dB, avg {q['average']:.2f} dB")
        assert q["y"] >= 45.0


def test_watermark_adds_about_its_own_energy_on_noisy_content(job480, tmp_path):
    # On grainy content two encodes differ by coding noise (~42 dB here), so the
    # meaningful check is what the mark adds to the distortion against the
    # source: about its own energy (1 grey level^2), not amplified by the encoder.
    src, out, meta, _ = job480
    plain_meta, _ = _run(src, tmp_path / "plain", strength=0.0,
                         ladder=[choose_ladder(probe(src))[0]])
    wm = _top_rung_stream(out, meta, tmp_path / "wm.mp4")
    plain = _top_rung_stream(tmp_path / "plain", plain_meta, tmp_path / "plain.mp4")
    q_wm, q_plain, q_between = mh.psnr(wm, src), mh.psnr(plain, src), mh.psnr(wm, plain)
    mse = lambda db: 255.0 ** 2 / 10 ** (db / 10)          # noqa: E731
    added = mse(q_wm["y"]) - mse(q_plain["y"])
    print(f"\n480p grainy: plain vs source Y {q_plain['y']:.2f} dB, watermarked vs source "
          f"{q_wm['y']:.2f} dB, watermarked vs plain {q_between['y']:.2f} dB; "
          f"added luma MSE {added:.2f}")
    assert 0.3 < added < 1.8
    assert abs(q_wm["u"] - q_plain["u"]) < 0.5                 # chroma untouched


# --- robustness: read the bits back from a leaked copy -------------------------

def _check_bits(result, bits, label):
    zs = [round(b.z, 1) for b in result]
    print(f"\n{label}: z = {zs}, min |z| = {min(abs(z) for z in zs):.1f}")
    assert [b.index for b in result] == list(range(len(bits)))
    assert [1 if b.z > 0 else 0 for b in result] == bits
    assert min(abs(b.z) for b in result) > 5.0


@pytest.mark.parametrize("pattern", ["alternating", "random"])
def test_detector_reads_bits_from_480p_source_leaked_at_360p(job480, tmp_path, pattern):
    src, out, meta, _ = job480
    n = meta["segment_count"]
    rng = random.Random(11)   # seeded once: a fresh Random(11) per draw would give all ones
    bits = [i % 2 for i in range(n)] if pattern == "alternating" else [rng.randint(0, 1) for _ in range(n)]
    assert pattern == "alternating" or bits == [1, 1, 1, 0, 0, 1]   # neither constant nor alternating
    stream = mh.concat_variant_stream(out, "480p", bits, tmp_path / "session.mp4")
    leak = mh.leak_copy(stream, tmp_path / "leak.mp4", 360, crf=28)
    _check_bits(read_soft_bits(str(leak), str(src), VIDEO_ID, SECRET), bits,
                f"480p->360p CRF28 {pattern}")


def test_detector_reads_bits_from_720p_rung_leaked_at_480p(job720, tmp_path):
    src, out, meta = job720
    bits = [1, 0, 0, 1][: meta["segment_count"]]
    stream = mh.concat_variant_stream(out, "720p", bits, tmp_path / "session.mp4")
    leak = mh.leak_copy(stream, tmp_path / "leak.mp4", 480, crf=28)
    _check_bits(read_soft_bits(str(leak), str(src), VIDEO_ID, SECRET), bits,
                "720p->480p CRF28")


def test_detector_with_offset_and_wrong_key(job480, tmp_path):
    src, out, meta, _ = job480
    n = meta["segment_count"]
    bits = [1, 1, 0, 1, 0, 0][:n]
    # A copy that starts at segment 2 (the leaker skipped the first 4 s).
    base = out / "video" / "360p"
    trimmed = tmp_path / "trimmed.mp4"
    with open(trimmed, "wb") as fh:
        fh.write((base / "init.mp4").read_bytes())
        for i in range(2, n):
            fh.write((base / ("a" if bits[i] else "b") / f"{i:05d}.m4s").read_bytes())
    leak = mh.leak_copy(trimmed, tmp_path / "leak.mp4", 360, crf=28)
    got = read_soft_bits(str(leak), str(src), VIDEO_ID, SECRET,
                         offset_frames=2 * meta["frames_per_segment"])
    assert [b.index for b in got] == list(range(2, n))
    assert [1 if b.z > 0 else 0 for b in got] == bits[2:]
    # The wrong key (or video id) must read noise, not confident bits.
    wrong = read_soft_bits(str(leak), str(src), VIDEO_ID, b"another-secret",
                           offset_frames=2 * meta["frames_per_segment"])
    wrong_z = np.array([b.z for b in wrong])
    print(f"\nwrong key z = {np.round(wrong_z, 2).tolist()}")
    assert np.all(np.abs(wrong_z) < 4.0)
