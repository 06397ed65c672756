"""Sources with odd properties through media.pipeline (the chunked path in one process):
variable frame rate, rotation metadata, 4:3, portrait, 10-bit, no audio, 60 and 120 fps,
timestamps that do not start at 0 (MPEG-TS, MPEG-PS, a cut MP4), interlaced (field-coded).
Each is generated here with ffmpeg (small, a few seconds, deterministic lavfi sources)
and either processed correctly — orientation, aspect, a constant frame rate on the 2-s
segment grid, 8-bit 4:2:0 output that decodes cleanly — or refused with a reason."""
from __future__ import annotations

import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from svcommon.medialimits import MediaLimits
from watermark_svc.media import InvalidMedia, process
from watermark_svc.media.probe import probe_to_publish
from watermark_svc.media.procs import ProcessGroup
from watermark_svc.media.storyboard import make_storyboard

try:
    from . import media_helpers as mh
except ImportError:
    import media_helpers as mh

SECRET = b"test-secret-0123456789abcdef0123"
FF = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
# Left half bright, right half dark: where the bright half ends up shows the orientation.
HALVES = "color=c=white:size={w}x{h}:rate={fps},drawbox=x={half}:y=0:w={half}:h={h}:color=black:t=fill"


def _encode(dest: Path, video: str, seconds: float, *, vf: str | None = None, pix_fmt: str = "yuv420p",
            audio: bool = True, extra: tuple[str, ...] = (), codecs: tuple[str, str] = ("libx264", "aac")) -> Path:
    argv = FF + ["-f", "lavfi", "-i", video]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    argv += ["-t", str(seconds)] + (["-vf", vf] if vf else [])
    argv += ["-c:v", codecs[0], "-pix_fmt", pix_fmt, *extra]
    argv += ["-preset", "veryfast", "-crf", "18"] if codecs[0] == "libx264" else []
    argv += ["-c:a", codecs[1], "-b:a", "64k"] if audio else ["-an"]
    mh.run(argv + [str(dest)])
    return dest


def _halves(w: int, h: int, fps: int = 30) -> str:
    return HALVES.format(w=w, h=h, fps=fps, half=w // 2) + ",noise=alls=2:allf=t"


# An OBS or streaming recording, Windows Media, Ogg Theora.
LEGACY_CONTAINERS = {"flv": ("obs.flv", ("libx264", "aac")), "wmv": ("old.wmv", ("wmv2", "wmav2")),
                     "ogv": ("open.ogv", ("libtheora", "libvorbis"))}
WEBM_ALPHA = {"vp9_with_alpha": ("libvpx-vp9", "libopus"), "vp8_with_alpha": ("libvpx", "libvorbis")}


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
    # Timestamps from ~1.4 s, key frames 1.5 s apart; seeks land on any packet.
    if case == "mpegts":
        return _encode(d / "src.ts", "testsrc2=size=320x240:rate=30", 5, extra=("-g", "45"))
    if case == "mpeg_ps":
        return _encode(d / "src.mpg", "testsrc2=size=320x240:rate=30", 5, codecs=("mpeg2video", "mp2"),
                       extra=("-g", "15", "-q:v", "4"))
    if case == "interlaced":       # 50 fields/s woven into 25 frames: moving edges comb
        return _encode(src, "testsrc2=size=640x360:rate=50", 3, vf="tinterlace=mode=interleave_top,setfield=tff",
                       extra=("-flags", "+ilme+ildct", "-x264-params", "tff=1"))
    if case == "bt2020_only_primaries":   # wide gamut, its transfer and matrix untagged
        return _encode(src, "testsrc2=size=480x270:rate=30", 3, pix_fmt="yuv420p10le",
                       extra=("-x264-params", "colorprim=bt2020"))
    if case == "aspect_switch":
        # A DVB SD capture whose programme switches from 4:3 to 16:9 at 3 s: the same 720x576
        # pixels, shown 16:15 then 64:45 wide (only the codec's pixel aspect changes).
        parts = [_encode(d / f"part{i}.ts", "testsrc2=size=720x576:rate=25", 3, vf=f"setsar={sar}",
                         extra=("-bf", "0", "-output_ts_offset", str(3 * i)))
                 for i, sar in enumerate(("16/15", "64/45"))]
        src = d / f"{case}.ts"
        src.write_bytes(b"".join(p.read_bytes() for p in parts))
        return src
    if case in ("size_change", "interlaced_size_change"):
        # An IPTV capture: 3 s at 320x240, then 640x360, timestamps running on (-bf 0: each
        # part's first frame at its start). The decode's filter graph used to be rebuilt at
        # the switch, and the new fps filter filled the output from 0 again: 89 frames too
        # many, refused as "broken or crafted timestamps".
        interlaced = case.startswith("interlaced")
        rate, vf = (50, "tinterlace=mode=interleave_top,setfield=tff") if interlaced else (30, None)
        extra = ("-flags", "+ilme+ildct", "-x264-params", "tff=1") if interlaced else ()
        parts = [_encode(d / f"part{i}.ts", f"testsrc2=size={size}:rate={rate}", 3, vf=vf,
                         extra=("-bf", "0", "-output_ts_offset", str(3 * i), *extra))
                 for i, size in enumerate(("320x240", "640x360"))]
        src = d / f"{case}.ts"
        src.write_bytes(b"".join(p.read_bytes() for p in parts))
        return src
    if case == "png_with_alpha":    # QuickTime PNG (motion graphics): refused as "an image format" before
        # Its right half transparent, the colours the pattern had left there.
        opaque_left = "format=rgba,geq=r='r(X\\,Y)':g='g(X\\,Y)':b='b(X\\,Y)':a='if(lt(X\\,160)\\,255\\,0)'"
        return _encode(d / "png.mov", f"testsrc2=size=320x240:rate=30,{opaque_left}", 3, codecs=("png", "aac"),
                       pix_fmt="rgba")
    if case in WEBM_ALPHA:          # WebM with alpha (motion graphics, a browser's canvas recording)
        opaque_left = "format=rgba,geq=r='r(X\\,Y)':g='g(X\\,Y)':b='b(X\\,Y)':a='if(lt(X\\,160)\\,255\\,0)'"
        return _encode(d / "alpha.webm", f"testsrc2=size=320x240:rate=30,{opaque_left}", 3, codecs=WEBM_ALPHA[case],
                       pix_fmt="yuva420p", extra=("-b:v", "1M", "-auto-alt-ref", "0"))
    if case in LEGACY_CONTAINERS:   # refused as "not a recognised video file" before
        name, codecs = LEGACY_CONTAINERS[case]
        return _encode(d / name, "testsrc2=size=320x240:rate=25", 3, codecs=codecs, extra=("-b:v", "1M"))
    if case == "slideshow":         # a picture every 2 s (0.5 fps): refused as "no usable frame rate" before
        return _encode(src, "testsrc2=size=320x240:rate=1/2", 10)
    if case == "starts_at_10s":     # a cut of a longer recording that kept its timestamps
        return _encode(src, "testsrc2=size=320x240:rate=30", 5, extra=("-output_ts_offset", "10"))
    raise AssertionError(case)


# case → (rung sizes, output fps, has audio)
EXPECTED = {
    # Averages ~21 fps; its frames mostly come at 30 (what it moves at): 30, where the
    # average's next standard rate (24) dropped every fifth frame of its 30-fps part.
    "vfr": ([(320, 240)], Fraction(30), True),
    "rotated": ([(240, 320)], Fraction(30), True),
    "4x3": ([(640, 480), (480, 360)], Fraction(30), True),
    "portrait": ([(360, 640)], Fraction(30), True),
    "10bit": ([(480, 270)], Fraction(30), True),
    "no_audio": ([(480, 270)], Fraction(30), False),
    "60fps": ([(480, 270)], Fraction(60), True),
    "120fps": ([(320, 240)], Fraction(60), True),
    "mpegts": ([(320, 240)], Fraction(30), True),
    "mpeg_ps": ([(320, 240)], Fraction(30), True),
    "starts_at_10s": ([(320, 240)], Fraction(30), True),
    "interlaced": ([(640, 360)], Fraction(25), True),
    "bt2020_only_primaries": ([(480, 270)], Fraction(30), True),
    "png_with_alpha": ([(320, 240)], Fraction(30), True),
    **{case: ([(320, 240)], Fraction(30), True) for case in WEBM_ALPHA},
    "slideshow": ([(320, 240)], Fraction(10), True),          # each picture repeated at the lowest standard rate
    **{case: ([(320, 240)], Fraction(25), True) for case in LEGACY_CONTAINERS},
    "size_change": ([(320, 240)], Fraction(30), True),      # the ladder of the first picture size
    "interlaced_size_change": ([(320, 240)], Fraction(25), True),
    "aspect_switch": ([(640, 480), (480, 360)], Fraction(25), True),
}


def _combed_frames(path: Path) -> int:
    """Frames ffmpeg's interlace detector (idet) calls interlaced."""
    log = subprocess.run(["ffmpeg", "-nostdin", "-i", str(path), "-vf", "idet", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    line = next(x for x in log.splitlines() if "Multi frame detection" in x)
    return int(line.split("TFF:")[1].split()[0]) + int(line.split("BFF:")[1].split()[0])


def _stream(out: Path, rung: str, n: int, dest: Path) -> Path:
    return mh.concat_variant_stream(out, rung, [1] * n, dest)


def _bar_rows(path: Path, at: float, size: tuple[int, int] = (320, 240)) -> tuple[int, int]:
    """How many black rows the frame at `at` s has at its top and at its bottom."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"], capture_output=True, check=True).stdout
    lit = np.frombuffer(raw, np.uint8).reshape(size[1], size[0]).max(axis=1) > 24
    return int(lit.argmax()), int(lit[::-1].argmax())


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
    if case in ("mpegts", "mpeg_ps", "starts_at_10s"):     # refused as "truncated" before
        assert meta["duration"] == pytest.approx(5.0, abs=0.1)
    if case.endswith("size_change"):
        assert meta["duration"] == pytest.approx(6.0, abs=0.1)
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
    if case.endswith("size_change"):
        # The 16:9 part is shown whole in the 4:3 output, with bars (320x180 in 320x240),
        # not stretched to 4:3 as it was; the 4:3 part fills the picture.
        stream = tmp_path / f"{meta['renditions'][0]['name']}.mp4"
        assert _bar_rows(stream, 1.0) == (0, 0)
        assert _bar_rows(stream, 4.5) == pytest.approx((30, 30), abs=2)
    if case == "aspect_switch":      # the 16:9 part letterboxed in the 4:3 picture (640x360 in 640x480)
        stream = tmp_path / f"{meta['renditions'][0]['name']}.mp4"
        assert _bar_rows(stream, 1.0, (640, 480)) == (0, 0)
        assert _bar_rows(stream, 4.5, (640, 480)) == pytest.approx((60, 60), abs=2)
    if case == "png_with_alpha" or case in WEBM_ALPHA:
        # Transparency is shown over black, as players show a video; the alpha used to be
        # dropped, showing the colours left under it (mean 140 here; WebM's alpha is beside
        # the picture, which ffmpeg's own VP8/VP9 decoders skip), in the video and the poster.
        for picture in (tmp_path / f"{meta['renditions'][0]['name']}.mp4", tmp_path / "out" / "poster.jpg"):
            frame = _rgb(picture, 1.0 if picture.suffix == ".mp4" else None)
            assert float(frame[:, 85:].mean()) < 3 and float(frame[:, :75].mean()) > 60, picture.name
    if case == "interlaced":           # the source combs in every frame; the published video not
        assert _combed_frames(src) == 75
        assert _combed_frames(tmp_path / "360p.mp4") <= 5
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


def test_mpegts_with_key_frames_too_far_apart_is_refused_with_the_reason(tmp_path):
    """A TS whose only key frame is its first: every chunk's seek would have to decode from
    the start. Refused before any encoding, saying why and what to do."""
    src = _encode(tmp_path / "one-gop.ts", "testsrc2=size=160x120:rate=30", 34, audio=False,
                  extra=("-g", "100000", "-x264-params", "scenecut=0"))
    with pytest.raises(InvalidMedia, match=r"key frames are 34 s apart; in MPEG-TS at most 30 s .*remux it to MP4"):
        process(src, tmp_path / "out", "odd-one-gop", SECRET, preset="ultrafast")
    assert not (tmp_path / "out").exists()


def test_recordings_joined_end_to_end_are_refused_and_the_advice_works(tmp_path):
    """Two 3-s MPEG-TS recordings joined with `cat`: the second restarts its timestamps at
    1.4 s. Timed from the file's start, the decode dropped it, and 3 s of the 6 were
    published without a word. Refused, naming the reset and the remedy; the remedy (a
    remux, which numbers the timestamps afresh) then publishes all 180 frames."""
    part = _encode(tmp_path / "part.ts", "testsrc2=size=160x120:rate=30", 3)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)
    with pytest.raises(InvalidMedia, match=r"video's timestamps go back from 4\.4 s to 1\.4 s .*joined end to end"
                                           r".*remux it to MP4 first \(ffmpeg -i <file> -c copy out\.mp4"):
        process(joined, tmp_path / "out", "odd-joined", SECRET, preset="ultrafast")
    assert not (tmp_path / "out").exists()
    remuxed = tmp_path / "remuxed.mp4"
    mh.run(FF + ["-i", str(joined), "-c", "copy", str(remuxed)])
    meta = process(remuxed, tmp_path / "out", "odd-joined", SECRET, preset="ultrafast")
    stream = _stream(tmp_path / "out", meta["renditions"][0]["name"], meta["segment_count"], tmp_path / "s.mp4")
    # The 180 recorded frames and the sync pad before them: the remux's audio starts 21 ms
    # before its picture, and the published picture starts with the sound.
    assert mh.count_frames(stream) == 180 + 1 and meta["duration"] == pytest.approx(6.033, abs=0.01)


def _still_over_sound(d: Path, name: str, sound_s: float) -> Path:
    """One picture over sound_s of sound, as `ffmpeg -i picture -i sound` makes it."""
    picture = d / "picture.png"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", str(picture)])
    argv = FF + ["-i", str(picture)]
    argv += ["-f", "lavfi", "-i", f"sine=duration={sound_s}", "-c:a", "aac"] if sound_s else []
    mh.run(argv + ["-c:v", "libx264", str(d / name)])
    return d / name


# What cannot be published as it is, and why (module doc of svcommon.mediaprobe, check_publishable).
UNPUBLISHABLE = {
    # Below 128x72 the watermark of a 60-s leak re-encoded at CRF 28 reads no better than
    # chance (32x18: 13 of 30 segments wrong), so no stream of it could be traced.
    "tiny": (lambda d: _encode(d / "tiny.mp4", "testsrc2=size=64x36:rate=30", 3),
             r"picture is 64x36 \(2304 pixels\); at least 9216 pixels \(as in 128x72\) are needed for the forensic"),
    "strip": (lambda d: _encode(d / "strip.mp4", "testsrc2=size=24x400:rate=30", 3, audio=False),
              r"picture is 24x400; each side must be at least 32 pixels"),
    # A header's pixel aspect of 100:1 made a 320x240 video's ladder 1920x14 ... 640x4.
    "absurd_pixel_aspect": (lambda d: _encode(d / "sar.mp4", "testsrc2=size=320x240:rate=30", 2, vf="setsar=100/1"),
                            r"320x240, shown at 133\.3:1 \(its header makes each pixel 100:1\); at most 8:1"),
    "strip_shown_wide": (lambda d: _encode(d / "wide.mp4", "testsrc2=size=2880x32:rate=30", 1, audio=False),
                         r"2880x32, shown at 90\.0:1; at most 8:1"),
    # The published audio is cut at the picture's end: 5 s of sound would have gone.
    "sound_after_the_picture": (lambda d: _encode(d / "long-sound.mp4", "testsrc2=size=320x240:rate=30:duration=3",
                                                  8, extra=("-af", "apad")),
                                r"sound goes on 5\.0 s after the last picture \(at 3\.0 s\).*as long as the sound"),
    # A picture over a podcast made without -loop 1: it used to fail in the worker
    # ("poster.jpg was not produced") after the upload had been accepted.
    "still_over_sound": (lambda d: _still_over_sound(d, "still.mp4", 10),
                         r"sound goes on 10\.0 s after the last picture \(at 0\.0 s\).*ffmpeg -loop 1"),
    "single_frame": (lambda d: _still_over_sound(d, "one.mp4", 0), r"single frame \(a still picture, not a video\)"),
    # A camera codec ffmpeg does not decode (ProRes RAW's tag): "the start of the video
    # cannot be decoded" before, which sounded like a damaged file.
    "undecodable_codec": (lambda d: _retagged(_encode(d / "prores.mov", "testsrc2=size=320x240:rate=30", 1,
                                                      audio=False, codecs=("prores_ks", "")), b"apch", b"aprn"),
                          r"codec is not one that can be decoded here \(its tag: aprn\); re-encode it"),
    # Sound in a codec ffmpeg does not decode: accepted at upload, then the worker's audio
    # task failed ("Decoder (codec none) not found").
    "undecodable_sound": (lambda d: _retagged(_with_sounds(d / "pcm.mov", ("pcm_s16le",)), b"sowt", b"zzzz"),
                          r"sound's codec is not one that can be decoded here \(its tag: zzzz\)"),
}


def _with_sounds(dest: Path, codecs: tuple[str, ...]) -> Path:
    """3 s of 320x240 picture and one audio stream per codec, in that order (a MOV keeps it)."""
    argv = FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-f", "lavfi", "-i",
                 "sine=frequency=440:duration=3", "-map", "0:v"] + ["-map", "1:a"] * len(codecs)
    argv += ["-c:v", "libx264", "-preset", "ultrafast"]
    for i, codec in enumerate(codecs):
        argv += [f"-c:a:{i}", codec]
    mh.run(argv + [str(dest)])
    return dest


def _retagged(path: Path, tag: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert data.count(tag) == 1
    path.write_bytes(data.replace(tag, new))
    return path


@pytest.mark.parametrize("case", list(UNPUBLISHABLE))
def test_what_cannot_be_published_is_refused_with_the_reason(case, tmp_path):
    make, reason = UNPUBLISHABLE[case]
    with pytest.raises(InvalidMedia, match=reason):
        process(make(tmp_path), tmp_path / "out", f"odd-{case}", SECRET, preset="ultrafast")
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_sound_that_ends_before_the_picture_is_padded_to_its_end(tmp_path):
    """8 s of picture, 3 s of sound. The audio stream used to end at 3 s, 2 segments
    against the video's 4: players can freeze where one stream ends before the other.
    It now lasts as long as the video, silent after the sound's end."""
    src = _encode(tmp_path / "short-sound.mp4", "testsrc2=size=320x240:rate=30:duration=8", 8,
                  extra=("-af", "atrim=end=3"))
    meta = process(src, tmp_path / "out", "odd-short-sound", SECRET, preset="ultrafast")
    assert meta["duration"] == pytest.approx(8.0, abs=0.05)
    assert sum(meta["audio"]["segment_durations"]) == pytest.approx(8.0, abs=0.05)
    first_sound, last_sound = _sound_span(tmp_path / "out", tmp_path)
    assert first_sound == pytest.approx(0.0, abs=0.05) and last_sound == pytest.approx(3.0, abs=0.06)


def test_sound_is_taken_from_the_first_stream_that_decodes(tmp_path):
    """A capture whose first audio stream is in a codec ffmpeg cannot decode (as Dolby E
    in a broadcast TS) and whose second is AAC: published with the AAC sound."""
    src = _retagged(_with_sounds(tmp_path / "two-sounds.mov", ("pcm_s16le", "aac")), b"sowt", b"zzzz")
    meta = process(src, tmp_path / "out", "odd-two-sounds", SECRET, preset="ultrafast")
    first_sound, last_sound = _sound_span(tmp_path / "out", tmp_path)
    assert first_sound == pytest.approx(0.0, abs=0.05) and last_sound == pytest.approx(3.0, abs=0.06)
    assert meta["audio"] is not None


def test_sound_is_the_track_marked_default(tmp_path):
    """A rip whose first audio track is silent (say, a commentary not recorded) and whose
    second, marked default, is the film's sound: the default one is published."""
    src = tmp_path / "two-tracks.mkv"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-f", "lavfi", "-i",
                 "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "anullsrc=duration=3", "-map", "0:v",
                 "-map", "2:a", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                 "-disposition:a:0", "0", "-disposition:a:1", "default", str(src)])
    process(src, tmp_path / "out", "odd-two-tracks", SECRET, preset="ultrafast")
    assert _sound_span(tmp_path / "out", tmp_path)[1] == pytest.approx(3.0, abs=0.06)   # not silence


def test_screen_recording_with_a_still_stretch_is_published(tmp_path):
    """A screen recorder (a browser's MediaRecorder, a phone's) writes no frames while
    nothing on screen moves: here 1 s of frames, none for 15 s, then 1 s more. It was
    refused ("jumps 15.0 s between two frames; at most 10 s ... broken or crafted
    timestamps"); the output now shows the last frame through the stretch."""
    src = tmp_path / "screen.webm"
    expr = "if(lt(N\\,30)\\,N/(30*TB)\\,(N-30)/(30*TB)+16/TB)"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2", "-vf", f"setpts='{expr}'",
                 "-fps_mode", "passthrough", "-c:v", "libvpx-vp9", "-deadline", "realtime", str(src)])
    meta = process(src, tmp_path / "out", "odd-screen", SECRET, preset="ultrafast")
    assert meta["duration"] == pytest.approx(17.0, abs=0.05)
    stream = _stream(tmp_path / "out", meta["renditions"][0]["name"], meta["segment_count"], tmp_path / "s.mp4")
    assert mh.count_frames(stream) == 17 * 30
    # The poster (10 % in: 1.7 s) is the screen shown then, frame 29, not the next frame
    # written (at 16 s), which is what a still took before.
    assert _closest_frame(tmp_path / "out" / "poster.jpg", src, (29, 30)) == 29


def _gray(path: Path, frame: int | None = None) -> np.ndarray:
    pick = ["-vf", f"select=eq(n\\,{frame}),scale=160:120", "-fps_mode", "passthrough"] if frame is not None \
        else ["-vf", "scale=160:120"]
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), *pick, "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).astype(np.float32)


def _closest_frame(still: Path, src: Path, frames: tuple[int, ...]) -> int:
    """Which of the source's frames (by decode number) the still shows."""
    picture = _gray(still)
    return min(frames, key=lambda n: float(np.abs(picture - _gray(src, n)).mean()))


def _ends_on_a_still(dest: Path, hold_s: float) -> Path:
    """1 s of 30-fps frames whose last one shows for hold_s seconds: a screen recording that
    ends on a still screen, in MP4, where a sample's duration is its table entry (stts).
    Made by writing the last frame hold_s late, then swapping the last two durations."""
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=1", "-vf",
                 f"setpts='if(lt(N\\,29)\\,N/(30*TB)\\,(29/30+{hold_s}-1/30)/TB)'", "-fps_mode", "passthrough",
                 "-c:v", "libx264", "-preset", "ultrafast", "-video_track_timescale", "15360", str(dest)])
    data = bytearray(dest.read_bytes())
    at = data.index(b"stts") + 12
    entries = [list(struct.unpack(">II", data[at + 8 * k: at + 8 * k + 8])) for k in range(3)]
    assert [e[0] for e in entries] == [28, 1, 1]          # 28 frames, the late one's step, the last
    entries[1][1], entries[2][1] = entries[2][1], entries[1][1]
    for k, entry in enumerate(entries):
        data[at + 8 * k: at + 8 * k + 8] = struct.pack(">II", *entry)
    dest.write_bytes(bytes(data))
    return dest


def test_recording_that_ends_on_a_still_screen_is_published(tmp_path):
    """Its last frame shows for 11 s (12 s in all). It was refused as "the end of the video
    cannot be decoded (the file is probably truncated)": the end check dropped every frame
    that started before the last second. Past that, the poster at 10 % (1.2 s) found no frame
    starting after it, and the worker failed with "poster.jpg was not produced"."""
    src = _ends_on_a_still(tmp_path / "ends-still.mp4", 11.0)
    meta = process(src, tmp_path / "out", "odd-ends-still", SECRET, preset="ultrafast")
    assert meta["duration"] == pytest.approx(29 / 30 + 11.0, abs=0.01)
    stream = _stream(tmp_path / "out", meta["renditions"][0]["name"], meta["segment_count"], tmp_path / "s.mp4")
    assert mh.count_frames(stream) == pytest.approx(30 * meta["duration"], abs=1)
    assert _closest_frame(tmp_path / "out" / "poster.jpg", src, (28, 29)) == 29
    assert _closest_frame(tmp_path / "out" / "thumb.jpg", src, (28, 29)) == 29


def test_last_frame_held_past_the_gap_limit_is_refused(tmp_path):
    """A last frame that shows on is a stretch without a new frame like any other."""
    src = _ends_on_a_still(tmp_path / "ends-still.mp4", 11.0)
    with pytest.raises(InvalidMedia, match="holds no frame for 11.0 s \\(after 1.0 s\\)"):
        probe_to_publish(src, MediaLimits(max_gap_s=5))


def test_screen_recording_keeps_the_rate_it_moves_at(tmp_path):
    """2 s of 30-fps motion, 12 s without frames (a still screen), 2 s of motion, in MP4:
    its average rate is 7.5 fps, and it was published at 10 fps, losing two frames in three
    of every motion. Published at 30 fps: every frame kept."""
    src = tmp_path / "screen.mp4"
    expr = "if(lt(N\\,60)\\,N/(30*TB)\\,(N-60)/(30*TB)+14/TB)"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=4", "-vf", f"setpts='{expr}'",
                 "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", str(src)])
    assert _avg_rate(src) == Fraction(15, 2)
    meta = process(src, tmp_path / "out", "odd-screen-rate", SECRET, preset="ultrafast")
    assert Fraction(meta["fps"]) == 30
    stream = _stream(tmp_path / "out", meta["renditions"][0]["name"], meta["segment_count"], tmp_path / "s.mp4")
    assert mh.count_frames(stream) == 16 * 30


def _avg_rate(path: Path) -> Fraction:
    info = mh.ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "stream=avg_frame_rate")
    return Fraction(info["streams"][0]["avg_frame_rate"])


def test_picture_that_starts_after_the_sound_is_published_whole(tmp_path):
    """A Matroska file whose sound starts 3 s before its 6 s of picture (a capture that
    waited for a key frame). It was refused twice over: as truncated (the container's 9 s
    measured from the picture's start) and then by the frame guard (the decodes, timed
    from the file's start, make 9 s of it). Published: the first frame until the picture
    starts, then every frame, and all 9 s of sound."""
    video, sound, src = tmp_path / "v.mp4", tmp_path / "a.m4a", tmp_path / "late-picture.mkv"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6", "-c:v", "libx264",
                 "-preset", "veryfast", str(video)])
    mh.run(FF + ["-f", "lavfi", "-i", "sine=duration=9", "-c:a", "aac", str(sound)])
    mh.run(FF + ["-itsoffset", "3", "-i", str(video), "-i", str(sound), "-map", "0:v", "-map", "1:a", "-c", "copy",
                 str(src)])
    meta = process(src, tmp_path / "out", "odd-late-picture", SECRET, preset="ultrafast")
    assert meta["duration"] == pytest.approx(9.033, abs=0.01)
    stream = _stream(tmp_path / "out", meta["renditions"][0]["name"], meta["segment_count"], tmp_path / "s.mp4")
    assert mh.count_frames(stream) == 91 + 180      # the first frame from 0 to 3.023 s (AAC priming), then all
    assert sum(meta["audio"]["segment_durations"]) == pytest.approx(meta["duration"], abs=0.05)
    assert _sound_span(tmp_path / "out", tmp_path)[1] == pytest.approx(9.0, abs=0.06)


def _published_sound(out: Path, tmp_path: Path) -> np.ndarray:
    """The published audio track decoded: mono 48 kHz samples from its start."""
    audio = out / "audio"
    joined = tmp_path / "audio.mp4"
    joined.write_bytes(b"".join(p.read_bytes() for p in [audio / "init.mp4", *sorted(audio.glob("*.m4s"))]))
    return np.frombuffer(subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(joined), "-f", "s16le",
                                         "-ac", "1", "-ar", "48000", "pipe:1"], capture_output=True, check=True).stdout,
                         np.int16)


def _sound_span(out: Path, tmp_path: Path) -> tuple[float, float]:
    """Seconds from the published audio's start to its first and its last loud sample."""
    loud = np.flatnonzero(np.abs(_published_sound(out, tmp_path)) > 1000)
    return loud[0] / 48000, loud[-1] / 48000


def test_sound_is_the_video_programmes_in_a_multiplex(tmp_path):
    """A capture of a broadcast multiplex: a radio channel (880 Hz) whose programme comes
    first, then a TV channel (picture and 440 Hz). The radio's sound, the first audio
    stream, was published over the TV picture; now the TV's own."""
    src = tmp_path / "mux.ts"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=880",
                 "-f", "lavfi", "-i", "sine=frequency=440", "-t", "3", "-map", "0:v", "-map", "1:a", "-map", "2:a",
                 "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                 "-program", "title=Radio:st=1", "-program", "title=TV:st=0:st=2", str(src)])
    process(src, tmp_path / "out", "odd-multiplex", SECRET, preset="ultrafast")
    pcm = _published_sound(tmp_path / "out", tmp_path)[24000:72000].astype(np.float64)
    assert int(np.argmax(np.abs(np.fft.rfft(pcm)))) == 440      # 1 Hz bins over 48000 samples


def test_sound_that_changes_format_partway_stays_in_place(tmp_path):
    """A broadcast capture whose sound goes from stereo 48 kHz (440 Hz here) to 5.1 at
    44.1 kHz (880 Hz) at 3 s. ffmpeg rebuilds the audio filter graph at the change, and the
    rebuilt one pushed the second part back by its own start: 3 s of silence from 3 s,
    the 880 Hz tone from 6 to 9 s, past the video's end. Now each half-second sounds as
    in the source, and the track lasts the video's 6 s."""
    parts = [_encode(tmp_path / f"part{i}.ts", "testsrc2=size=320x240:rate=25", 3, audio=False,
                     extra=("-bf", "0", "-output_ts_offset", str(3 * i)))
             for i in range(2)]
    for i, (tone, rate, channels) in enumerate(((440, 48000, 2), (880, 44100, 6))):
        mh.run(FF + ["-i", str(parts[i]), "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate={rate}", "-t", "3",
                     "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-ac", str(channels),
                     "-output_ts_offset", str(3 * i), str(tmp_path / f"sound{i}.ts")])
    src = tmp_path / "switch.ts"
    src.write_bytes(b"".join((tmp_path / f"sound{i}.ts").read_bytes() for i in range(2)))
    meta = process(src, tmp_path / "out", "odd-sound-switch", SECRET, preset="ultrafast")
    pcm = _published_sound(tmp_path / "out", tmp_path).astype(np.float64)
    assert len(pcm) / 48000 == pytest.approx(6.0, abs=0.1)
    half = 24000
    tones = [int(np.argmax(np.abs(np.fft.rfft(pcm[k * half:(k + 1) * half])))) * 2 for k in range(12)]
    assert tones[:6] == [440] * 6 and tones[6:] == [880] * 6, tones
    assert meta["duration"] == pytest.approx(6.0, abs=0.05)


@pytest.mark.parametrize("name", ["late.mp4", "late.ts"])
def test_audio_that_starts_after_the_video_stays_in_sync(tmp_path, name):
    """The sound starts 0.5 s after the first picture (a recorder that opened its microphone
    late). The published audio keeps that half second of silence: it used to start with the
    video, half a second early for the whole film."""
    src = tmp_path / name
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-itsoffset", "0.5",
                 "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4", "-map", "0:v", "-map", "1:a",
                 "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-c:a", "aac", str(src)])
    meta = process(src, tmp_path / "out", "odd-late-audio", SECRET, preset="ultrafast")
    first_sound, _ = _sound_span(tmp_path / "out", tmp_path)
    assert first_sound == pytest.approx(0.5, abs=0.06)      # AAC's own start-up adds a few ms
    assert sum(meta["audio"]["segment_durations"]) == pytest.approx(meta["duration"], abs=0.1)


HDR_TRANSFER = {"hlg": "arib-std-b67", "pq": "smpte2084"}


def _rgb(path: Path, at: float | None = 1.0) -> np.ndarray:
    """The picture at ``at`` s (None: a still's only one), 160x90 RGB."""
    seek = [] if at is None else ["-ss", str(at)]
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *seek, "-i", str(path), "-frames:v", "1",
                          "-vf", "scale=160:90", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(90, 160, 3).astype(np.float32)


@pytest.mark.parametrize("color", list(HDR_TRANSFER))
def test_hdr_source_is_published_in_its_colours(tmp_path, color):
    """A phone's HDR video (HLG; PQ/HDR10 from cameras and grading): 10-bit BT.2020 with an HDR
    transfer, made here from an SDR clip by zimg. The published SDR video shows the SDR clip's
    colours again (tone-mapped for PQ), where it used to be the HDR values read as BT.709:
    washed out (mean RGB difference ~77 for HLG, ~95 for PQ)."""
    sdr = _encode(tmp_path / "sdr.mp4", "testsrc2=size=640x360:rate=30", 3, audio=False)
    src = tmp_path / f"{color}.mp4"
    mh.run(FF + ["-i", str(sdr), "-vf", f"zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={HDR_TRANSFER[color]}:"
                 "npl=100:m=bt2020nc:p=bt2020:r=tv,format=yuv420p10le", "-c:v", "libx264", "-preset", "veryfast",
                 "-crf", "12", "-x264-params", f"colorprim=bt2020:transfer={HDR_TRANSFER[color]}:colormatrix=bt2020nc",
                 str(src)])
    assert float(np.abs(_rgb(src) - _rgb(sdr)).mean()) > 60              # as a BT.709 player would show it
    meta = process(src, tmp_path / "out", f"odd-{color}", SECRET, preset="ultrafast")
    stream = _stream(tmp_path / "out", meta["renditions"][0]["name"], meta["segment_count"], tmp_path / "out.mp4")
    assert float(np.abs(_rgb(stream) - _rgb(sdr)).mean()) < {"hlg": 15, "pq": 35}[color]


def test_anamorphic_source_storyboard_tiles_are_shown_shape(tmp_path):
    """A 16:9 SD broadcast capture stores 720x576 pixels shown 64:45 wide. Its storyboard
    tiles were planned from the pixels (5:4: the picture squashed); they are 16:9 now, and
    the picture fills them."""
    src = tmp_path / "dvb.mp4"
    mh.run(FF + ["-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25", "-t", "3", "-c:v", "libx264",
                 "-preset", "ultrafast", "-aspect", "16:9", str(src)])
    board, sprites = make_storyboard(str(src), probe_to_publish(src), tmp_path / "sb", ProcessGroup(tmp_path / "logs"))
    assert board.tile_height * 16 == pytest.approx(board.tile_width * 9, abs=16)
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(sprites[0]), "-f", "rawvideo",
                          "-pix_fmt", "gray", "pipe:1"], capture_output=True, check=True).stdout
    first = np.frombuffer(raw, np.uint8).reshape(-1, board.sprite_width)[: board.tile_height, : board.tile_width]
    assert (first.max(axis=1) > 24).all() and (first.max(axis=0) > 24).all()      # no bars


@pytest.mark.parametrize("case", ["4x3", "portrait", "vp9_with_alpha", "bt2020_only_primaries"])
def test_an_original_fingerprints_as_its_analysis_proxy(case, tmp_path):
    """Offline re-analysis (LocalCatalogue) over originals and over analysis proxies aligns a
    leak by the same fingerprint: an original of another shape than the 64x36 grid is fitted
    at its viewed size and then stretched as its proxy is (not pillarboxed), one with alpha
    shows its transparency black and a wide-gamut one is converted, as in its proxy."""
    from watermark_svc.forensics.localcat import LocalCatalogue
    src = _source(case, tmp_path)
    direct = LocalCatalogue({"v": str(src)}).fingerprint("v")
    proxied = LocalCatalogue({"v": str(src)}, proxy_dir=tmp_path).fingerprint("v")
    n = min(len(direct), len(proxied))
    assert n > 0 and abs(len(direct) - len(proxied)) <= 1
    assert np.abs(direct[:n] - proxied[:n]).mean() < 2.0       # grey levels: the proxy's H.264 only


def test_webm_alpha_is_read_whole_by_the_storyboard_and_the_detector(tmp_path, monkeypatch):
    """A VP9 WebM with alpha is read through libvpx (the probe names it) wherever the source
    is decoded: its storyboard tiles and the detector's read of the original show the
    transparent half black, as the published video does (test_odd_source_processes_correctly),
    so the reference the leak is compared with is what viewers got. A VP9 WebM without alpha
    keeps ffmpeg's own decoder."""
    from watermark_svc.forensics.detector import geometry_for_source
    from watermark_svc.forensics.frames import GrayFrames
    from watermark_svc.forensics.localcat import LocalCatalogue
    from watermark_svc.forensics.timing import FP_COLS, FP_ROWS
    from svcommon import mediaprobe
    src = _source("vp9_with_alpha", tmp_path)
    ran, run = [], mediaprobe.ff.run          # the probe's own decode checks, recorded as they run
    monkeypatch.setattr(mediaprobe.ff, "run", lambda argv, bounds: ran.append(argv) or run(argv, bounds))
    info = probe_to_publish(src)
    assert info.video_decoder == "libvpx-vp9"
    checks = [a for a in ran if "rawvideo" in a]
    assert len(checks) == 2 and all(a[a.index("-i") - 2:a.index("-i")] == ["-c:V:0", "libvpx-vp9"] for a in checks)
    monkeypatch.undo()
    plain = _encode(tmp_path / "plain.webm", "testsrc2=size=320x240:rate=30", 1, codecs=("libvpx-vp9", "libopus"))
    assert probe_to_publish(plain).video_decoder == ""
    board, sprites = make_storyboard(str(src), info, tmp_path / "sb", ProcessGroup(tmp_path / "logs"))
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(sprites[0]), "-f", "rawvideo",
                          "-pix_fmt", "gray", "pipe:1"], capture_output=True, check=True).stdout
    tile = np.frombuffer(raw, np.uint8).reshape(-1, board.sprite_width)[: board.tile_height, : board.tile_width]
    half = board.tile_width // 2
    assert tile[:, half + 4:].mean() < 24 < tile[:, : half - 4].mean()
    g = geometry_for_source(str(src))
    assert g.source_decoder == "libvpx-vp9"
    with GrayFrames(str(src), 160, 120, g.fps, max_frames=1, viewed=(g.pattern_width, g.pattern_height),
                    video_decoder=g.source_decoder) as frames:
        first = next(iter(frames)).astype(np.float32)
    assert first[:, 84:].mean() < 24 < first[:, :76].mean()
    # Offline re-analysis (LocalCatalogue over originals) reads it the same way, its
    # fingerprint included (the time alignment's reference).
    source = LocalCatalogue({"v": str(src)}).source("v")
    assert (source.decoder, source.color) == ("libvpx-vp9", "")
    grid = source.fingerprint[0].reshape(FP_ROWS, FP_COLS)
    assert grid[:, FP_COLS // 2 + 1:].mean() < 24 < grid[:, : FP_COLS // 2 - 1].mean()
