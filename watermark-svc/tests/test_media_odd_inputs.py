"""Sources with odd properties through media.pipeline (the chunked path in one process):
variable frame rate, rotation metadata, 4:3, portrait, 10-bit, no audio, 60 and 120 fps.
Each is generated here with ffmpeg (small, a few seconds, deterministic lavfi sources)
and either processed correctly — orientation, aspect, a constant frame rate on the 2-s
segment grid, 8-bit 4:2:0 output that decodes cleanly — or refused with a reason."""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from watermark_svc.media import InvalidMedia, process

try:
    from . import media_helpers as mh
except ImportError:
    import media_helpers as mh

SECRET = b"test-secret-0123456789abcdef0123"
FF = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
# Left half bright, right half dark: where the bright half ends up shows the orientation.
HALVES = "color=c=white:size={w}x{h}:rate={fps},drawbox=x={half}:y=0:w={half}:h={h}:color=black:t=fill"


def _encode(dest: Path, video: str, seconds: float, *, vf: str | None = None, pix_fmt: str = "yuv420p",
            audio: bool = True, extra: tuple[str, ...] = ()) -> Path:
    argv = FF + ["-f", "lavfi", "-i", video]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    argv += ["-t", str(seconds)] + (["-vf", vf] if vf else [])
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", pix_fmt, *extra]
    argv += ["-c:a", "aac", "-b:a", "64k"] if audio else ["-an"]
    mh.run(argv + [str(dest)])
    return dest


def _halves(w: int, h: int, fps: int = 30) -> str:
    return HALVES.format(w=w, h=h, fps=fps, half=w // 2) + ",noise=alls=2:allf=t"


def _source(case: str, d: Path) -> Path:
    src = d / f"{case}.mp4"
    if case == "vfr":
        # 30 fps for 1.5 s, then every other frame: timestamps keep the gaps (VFR).
        return _encode(src, "testsrc2=size=320x240:rate=30", 4,
                       vf="select='lt(t\\,1.5)+not(mod(n\\,2))'", extra=("-fps_mode", "vfr"))
    if case == "rotated":
        plain = _encode(d / "plain.mp4", _halves(320, 240), 3)
        mh.run(FF + ["-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(src)])
        return src
    if case == "4x3":
        return _encode(src, _halves(640, 480), 3)
    if case == "portrait":
        return _encode(src, _halves(360, 640), 3)
    if case == "10bit":
        return _encode(src, "testsrc2=size=480x270:rate=30", 3, pix_fmt="yuv420p10le")
    if case == "no_audio":
        return _encode(src, "testsrc2=size=480x270:rate=30", 3, audio=False)
    if case == "60fps":
        return _encode(src, "testsrc2=size=480x270:rate=60", 3)
    if case == "120fps":
        return _encode(src, "testsrc2=size=320x240:rate=120", 3)
    raise AssertionError(case)


# case → (rung sizes, output fps, has audio)
EXPECTED = {
    "vfr": ([(320, 240)], Fraction(24), True),      # average ~21 fps → the next standard rate
    "rotated": ([(240, 320)], Fraction(30), True),
    "4x3": ([(640, 480), (480, 360)], Fraction(30), True),
    "portrait": ([(360, 640)], Fraction(30), True),
    "10bit": ([(480, 270)], Fraction(30), True),
    "no_audio": ([(480, 270)], Fraction(30), False),
    "60fps": ([(480, 270)], Fraction(60), True),
    "120fps": ([(320, 240)], Fraction(60), True),
}


def _stream(out: Path, rung: str, n: int, dest: Path) -> Path:
    return mh.concat_variant_stream(out, rung, [1] * n, dest)


def _bright_side(path: Path, w: int, h: int) -> str:
    """'left', 'right', 'top' or 'bottom': the bright half of the first decoded frame."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"], capture_output=True, check=True).stdout
    frame = np.frombuffer(raw, np.uint8)[: w * h].reshape(h, w).astype(float)
    halves = {"left": frame[:, : w // 2], "right": frame[:, w // 2:], "top": frame[: h // 2], "bottom": frame[h // 2:]}
    return max(halves, key=lambda k: halves[k].mean())


@pytest.mark.parametrize("case", list(EXPECTED))
def test_odd_source_processes_correctly(case, tmp_path):
    src = _source(case, tmp_path)
    meta = process(src, tmp_path / "out", f"odd-{case}", SECRET, preset="ultrafast")
    sizes, fps, has_audio = EXPECTED[case]
    assert [(r["width"], r["height"]) for r in meta["renditions"]] == sizes, meta["renditions"]
    assert Fraction(meta["fps"]) == fps
    n = meta["segment_count"]
    durations = meta["segment_durations"]
    assert len(durations) == n and all(abs(d - 2.0) < 1e-3 for d in durations[:-1]), durations
    assert (meta.get("audio") is not None) == has_audio
    for r in meta["renditions"]:
        stream = _stream(tmp_path / "out", r["name"], n, tmp_path / f"{r['name']}.mp4")
        assert mh.decode_errors(stream) == ""
        info = mh.ffprobe_json(stream, "-select_streams", "v:0", "-show_entries",
                               "stream=width,height,pix_fmt,r_frame_rate,avg_frame_rate")["streams"][0]
        assert (info["width"], info["height"]) == (r["width"], r["height"])
        assert info["pix_fmt"] == "yuv420p"                         # 8-bit 4:2:0, whatever the source
        assert Fraction(info["r_frame_rate"]) == fps
        assert mh.count_frames(stream) == pytest.approx(float(fps) * float(meta["duration"]), abs=2)
    if case in ("rotated", "4x3", "portrait"):
        r = meta["renditions"][0]
        stream = tmp_path / f"{r['name']}.mp4"
        # The bright half lies where ffmpeg's own display-matrix rotation of the source puts
        # it (what players show); unrotated sources keep it on the left.
        w, h = sizes[0]
        assert _bright_side(stream, r["width"], r["height"]) == _bright_side(src, w, h)
        assert _bright_side(src, w, h) == ("bottom" if case == "rotated" else "left")


def test_frame_rate_above_the_limit_is_refused_with_the_reason(tmp_path):
    """240 fps (above MEDIA_MAX_FPS, 120): refused before any encoding, nothing left."""
    src = _encode(tmp_path / "240.mp4", "testsrc2=size=160x120:rate=240", 1, audio=False)
    with pytest.raises(InvalidMedia, match=r"frame rate is 240 fps; at most 120 fps"):
        process(src, tmp_path / "out", "odd-240", SECRET, preset="ultrafast")
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
