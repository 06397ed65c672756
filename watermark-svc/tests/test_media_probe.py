"""probe(): accept real videos with the right facts, reject everything else clearly."""
from __future__ import annotations

from fractions import Fraction

import pytest

from watermark_svc.media.errors import InvalidMedia
from watermark_svc.media.probe import probe

try:
    from . import media_helpers as mh
except ImportError:
    import media_helpers as mh


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return mh.make_clip(tmp_path_factory.mktemp("probe") / "clip.mp4", 640, 360, 4)


def test_accepts_real_clip(clip):
    p = probe(clip)
    assert (p.width, p.height) == (640, 360)
    assert p.display_aspect == Fraction(16, 9)
    assert p.fps == 30
    assert abs(p.duration_s - 4.0) < 0.1
    assert p.video_codec == "h264"
    assert p.has_audio and p.audio_codec == "aac"
    assert p.bitrate and p.bitrate > 0


def test_rejects_text_file_named_mp4(tmp_path):
    fake = tmp_path / "movie.mp4"
    fake.write_text("this is not a video, just text\n" * 100)
    with pytest.raises(InvalidMedia, match="not a recognised"):
        probe(fake)


def test_rejects_zero_bytes(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidMedia, match="empty"):
        probe(empty)


def test_rejects_missing_file(tmp_path):
    with pytest.raises(InvalidMedia, match="does not exist"):
        probe(tmp_path / "nope.mp4")


def test_rejects_truncated_mp4_index_at_end(clip, tmp_path):
    # Default MP4s keep their index (moov) at the end: a cut upload loses it.
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidMedia, match="truncated"):
        probe(cut)


def test_rejects_truncated_faststart_mp4(tmp_path):
    # With the index first, ffprobe is happy; only decoding the end catches the cut.
    full = mh.make_clip(tmp_path / "fs.mp4", 640, 360, 6, faststart=True, audio=False)
    data = full.read_bytes()
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidMedia, match="truncated|cannot be decoded"):
        probe(cut)


def test_rejects_audio_only(tmp_path):
    audio = tmp_path / "tone.m4a"
    mh.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
            "sine=frequency=440:duration=2", "-c:a", "aac", str(audio)])
    with pytest.raises(InvalidMedia, match="no video stream"):
        probe(audio)


def test_rejects_still_image(tmp_path):
    img = tmp_path / "frame.mp4"      # a PNG pretending to be a video
    mh.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
            "testsrc2=size=320x240", "-frames:v", "1", "-f", "image2", "-c:v", "png", str(img)])
    with pytest.raises(InvalidMedia):
        probe(img)
