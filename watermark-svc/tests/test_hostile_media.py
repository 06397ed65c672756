"""Hostile media against the one probe and the worker's pipeline (no stack needed): every
file of the generated corpus is refused with a reason naming the rule or the limit, no
request ever reaches the loopback listener, no local file's content reaches an output,
and every ffmpeg child is bounded."""
from __future__ import annotations

import subprocess
import time
from fractions import Fraction

import pytest

from svcommon import ffmpeg as ff
from svcommon.mediaprobe import MediaLimits
from watermark_svc.forensics.detector import WatermarkGeometry
from watermark_svc.forensics.frames import gray_cmd
from watermark_svc.forensics.reference import proxy_cmd
from watermark_svc.media import ffmpeg_cmd, pipeline
from watermark_svc.media.errors import InvalidMedia, LimitExceeded
from watermark_svc.media.ffmpeg_cmd import EncodeSettings
from watermark_svc.media.ladder import Rung
from watermark_svc.media.probe import probe
from watermark_svc.media.procs import ProcessGroup

SECRET = b"k" * 32


@pytest.mark.parametrize("name, reason", [
    ("hls_http", "HLS playlist"),
    ("hls_file", "HLS playlist"),
    ("hls_relative", "HLS playlist"),
    ("mpd_absolute", "DASH manifest"),
    ("mpd_relative", "DASH manifest"),
    ("concat", "concat list"),
    ("gap", "holds no frame for 3599"),
    ("huge", "16000x16000; at most 7680x7680"),
    ("rate", "fps; at most 120 fps"),
    ("streams", "70 streams; at most 64"),
    ("truncated", "truncated"),
    ("gif", "animated GIFs are not accepted"),
])
def test_hostile_file_refused_with_reason(corpus, listener, name, reason):
    with pytest.raises(InvalidMedia) as refused:
        probe(corpus[name])
    assert listener.hits == []              # first: nothing was fetched, whatever the verdict
    assert reason in refused.value.reason


def test_limits_are_settings(corpus):
    """The same files pass once the limit allows them: the refusal is the setting's."""
    assert probe(corpus["streams"], MediaLimits(max_streams=80)).streams == 70
    with pytest.raises(InvalidMedia, match="at most 1 s"):
        probe(corpus["rotated"], MediaLimits(max_duration_s=1))


def test_rotation_reported_as_published(corpus):
    p = probe(corpus["rotated"])
    assert (p.width, p.height, p.rotation) == (240, 320, 90)


def test_duration_runs_to_the_end_of_the_last_frame(corpus):
    # One rule for upload and worker: from the file's start to the end of the last frame
    # (what is published).
    assert probe(corpus["local"]).duration_s == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("name", ["hls_file", "hls_http", "concat", "mpd_relative"])
def test_pipeline_never_reads_what_a_playlist_names(corpus, listener, tmp_path, name):
    out = tmp_path / "out"
    with pytest.raises(InvalidMedia):
        pipeline.process(corpus[name], out, "v" * 32, SECRET)
    assert not out.exists() and list(tmp_path.iterdir()) == []      # nothing published, no staging
    assert listener.hits == []


def test_forced_demuxer_never_follows_a_playlist(corpus, listener):
    """Even handed straight to ffmpeg with a forced allowed demuxer, a playlist is just
    bad data: no request, no local file read."""
    argv = ff.base() + ["-protocol_whitelist", ff.PROTOCOLS, "-f", "mpegts", "-i", f"file:{corpus['hls_http']}",
                        "-f", "null", "-"]
    ff.run(argv, ff.Bounds(wall_seconds=30))
    assert listener.hits == []


def test_every_builder_forces_demuxer_and_protocols(corpus, tmp_path):
    src = str(corpus["local"])
    rung = Rung("360p", 480, 360, 800, 1200, 1600)
    settings = EncodeSettings(fps=Fraction(25), frames_per_segment=50)
    argvs = [ffmpeg_cmd.decode_raw_cmd(src, 160, 120, Fraction(25)),
             ffmpeg_cmd.audio_pcm_cmd(src),
             ffmpeg_cmd.encode_audio_cmd(str(tmp_path / "a.mp4"), 1.0),
             ffmpeg_cmd.stills_cmd(src, 0.5, Fraction(25), (160, 120), [ffmpeg_cmd.Still(160, 120, str(tmp_path / "p.jpg"))]),
             ffmpeg_cmd.package_cmd(str(tmp_path / "x.nut"), str(tmp_path), 2.0),
             gray_cmd(src, 64, 48, Fraction(25))]
    argvs.append(ffmpeg_cmd.encode_rungs_cmd([rung, rung], 160, 120, settings, ["a.nut", "b.nut"]))
    for argv in argvs:
        prev = 0
        for i, arg in enumerate(argv):
            if arg == "-i":     # this input's own options: forced format, file/pipe only
                opts = argv[prev:i]
                assert "-f" in opts and opts[opts.index("-protocol_whitelist") + 1] == "file,pipe", argv
                assert argv[i + 1].startswith(("file:/", "pipe:")), argv
                prev = i + 2
        assert "-i" in argv and not any("http" in a for a in argv)


def test_every_source_decode_reads_the_stream_the_probe_judged(corpus, tmp_path):
    """The probe judges the first video stream that is not a cover picture; each decode of
    a source maps that one (ffmpeg's 0:V:0), never the first video stream as such."""
    src = str(corpus["local"])
    rung = Rung("360p", 480, 360, 800, 1200, 1600)
    settings = EncodeSettings(fps=Fraction(25), frames_per_segment=50)
    argvs = [ffmpeg_cmd.decode_raw_cmd(src, 160, 120, Fraction(25)),
             ffmpeg_cmd.stills_cmd(src, 0.5, Fraction(25), (160, 120), [ffmpeg_cmd.Still(160, 120, str(tmp_path / "p.jpg"))]),
             ffmpeg_cmd.storyboard_cmd(src, 10, 4, 64, 36, 2, 2, str(tmp_path / "s%d.jpg")),
             ffmpeg_cmd.plain_ladder_cmd(src, [rung], 480, 360, settings, [str(tmp_path / "p.nut")]),
             gray_cmd(src, 64, 48, Fraction(25)),
             proxy_cmd(src, WatermarkGeometry(480, 360, 50, Fraction(25)), str(tmp_path / "proxy.mp4"))]
    for argv in argvs:
        line = " ".join(argv)
        assert "0:V:0" in line and "0:v" not in line, argv


def test_every_source_decode_uses_the_decoder_the_probe_named(corpus, tmp_path):
    """Where the probe names a decoder (a WebM with alpha: libvpx), every decode of the source
    reads its judged video stream with it: an option of that input, for that stream (the
    plain ladder is the benchmark's, of ordinary clips)."""
    src, dec = str(corpus["local"]), "libvpx-vp9"
    g = WatermarkGeometry(480, 360, 50, Fraction(25), source_decoder=dec)
    argvs = [ffmpeg_cmd.decode_raw_cmd(src, 160, 120, Fraction(25), video_decoder=dec),
             ffmpeg_cmd.stills_cmd(src, 0.5, Fraction(25), (160, 120),
                                   [ffmpeg_cmd.Still(160, 120, str(tmp_path / "p.jpg"))], video_decoder=dec),
             ffmpeg_cmd.storyboard_cmd(src, 10, 4, 64, 36, 2, 2, str(tmp_path / "s%d.jpg"), video_decoder=dec),
             gray_cmd(src, 64, 48, Fraction(25), video_decoder=dec),
             proxy_cmd(src, g, str(tmp_path / "proxy.mp4"))]
    for argv in argvs:
        i = argv.index("-i")
        assert argv[i - 2:i] == ["-c:V:0", dec] and argv.count("-i") == 1, argv
    assert "-c:V:0" not in ffmpeg_cmd.decode_raw_cmd(src, 160, 120, Fraction(25))


def test_unaccepted_container_never_reaches_ffmpeg(corpus):
    with pytest.raises(ff.UnsupportedContainer, match="playlist"):
        ff.input_args(corpus["hls_http"])


def test_child_cpu_bound_kills_and_names_it(tmp_path):
    group = ProcessGroup(tmp_path / "logs", ff.Bounds(cpu_seconds=1, wall_seconds=60))
    endless = ff.base() + ["-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-c:v", "libx264",
                           "-preset", "ultrafast", "-f", "null", "-"]
    started = time.monotonic()
    proc = group.start("endless", endless, stdin=subprocess.DEVNULL)
    with pytest.raises(LimitExceeded, match="CPU time"):
        group.wait_ok(proc, "encode")
    assert time.monotonic() - started < 30
    group.kill_all()


def test_group_wall_deadline_cancels_every_child(tmp_path):
    group = ProcessGroup(tmp_path / "logs")
    group.arm(ff.Bounds(cpu_seconds=600, wall_seconds=1.5))
    # A child blocked on its input pipe burns no CPU: only the group's deadline stops it.
    proc = group.start("stuck", ff.base() + ff.pipe_input_args("rawvideo", ["-s", "16x16", "-pix_fmt", "gray"])
                       + ["-f", "null", "-"], stdin=subprocess.PIPE)
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="time limit"):
        group.wait_ok(proc, "encode")
    assert time.monotonic() - started < 10
    group.kill_all()


def test_memory_bound_stops_a_decompression_bomb(corpus):
    argv = ff.base() + ff.input_args(corpus["huge"]) + ["-f", "null", "-"]
    res = ff.run(argv, ff.Bounds(memory_bytes=256 * 1024 * 1024, wall_seconds=60))
    assert res.returncode != 0            # a 16000x16000 frame does not fit in 256 MiB
