"""A hostile-media corpus, generated (never committed): what an attacker uploads as
``x.mp4`` or submits as a forensic suspect. Plus a loopback HTTP listener that records
every request, to prove ffmpeg never fetches anything.

Each builder returns the path it wrote; files are tiny (a few frames, small pictures).
"""
from __future__ import annotations

import http.server
import struct
import subprocess
import threading
from pathlib import Path

import pytest

FF = ["ffmpeg", "-nostdin", "-v", "error", "-y"]


def ffmpeg(*args: str) -> None:
    subprocess.run([*FF, *args], check=True, capture_output=True)


def clip(path: Path, seconds: float = 2, size: str = "160x120", rate: int = 25, extra=()) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, str(path))
    return path


class Listener:
    """Loopback HTTP server answering 200 with a tiny MPEG-TS-looking body; records paths."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):               # noqa: N802 (http.server's naming)
                hits.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"\x47" * 188 * 4)

            do_HEAD = do_GET

            def log_message(self, *a):      # keep test output clean
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def hls_playlist(path: Path, target: str) -> Path:
    """An HLS media playlist whose only segment is `target` (http://…, file:///…, relative)."""
    path.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
                    f"#EXTINF:2.0,\n{target}\n#EXT-X-ENDLIST\n")
    return path


def dash_mpd(path: Path, base_url: str) -> Path:
    """A DASH manifest whose BaseURL is absolute (http://…) or relative (../<id>/original)."""
    path.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <BaseURL>{base_url}</BaseURL>
  <Period><AdaptationSet mimeType="video/mp4"><Representation id="v" bandwidth="100000"
    codecs="avc1.64000d" width="160" height="120"><BaseURL>x.mp4</BaseURL></Representation>
  </AdaptationSet></Period></MPD>
""")
    return path


def concat_list(path: Path, target: str) -> Path:
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return path


def local_secret_ts(path: Path) -> Path:
    """A local .ts the worker could be tricked into reading (a file://-playlist target)."""
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=160x120:rate=25:duration=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts", str(path))
    return path


def timestamp_gap(path: Path, gap_s: float = 36000, frames: int = 31) -> Path:
    """`frames` frames at 25 fps, the last one `gap_s` seconds later (mkv keeps timestamps)."""
    expr = f"if(eq(N,{frames - 1}),{gap_s}/TB,N/(25*TB))"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={frames / 25}",
           "-vf", f"setpts='{expr}'", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def huge_still(path: Path, size: str = "16000x16000") -> Path:
    """One frame of a huge flat picture in a MOV (tiny file, huge decode)."""
    ffmpeg("-f", "lavfi", "-i", f"color=c=gray:size={size}:rate=1:duration=1",
           "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "31", "-f", "mov", str(path))
    return path


def still_over_sound(path: Path, seconds: int = 10) -> Path:
    """A single picture over `seconds` of sound: what `ffmpeg -i picture -i sound` gives
    without `-loop 1` (the sound would be lost: published as long as the picture)."""
    picture = path.with_suffix(".png")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", str(picture))
    ffmpeg("-i", str(picture), "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-c:a", "aac",
           str(path))
    picture.unlink()
    return path


def absurd_rate(path: Path, rate: int = 100000) -> Path:
    return clip(path, seconds=0.01, rate=rate, extra=("-f", "matroska"))


def many_streams(path: Path, n: int = 70) -> Path:
    src = clip(path.with_suffix(".src.mp4"), seconds=1)
    maps = [x for _ in range(n) for x in ("-map", "0:v:0")]
    ffmpeg("-i", str(src), *maps, "-c", "copy", "-f", "matroska", str(path))
    src.unlink()
    return path


def truncated_mdat(path: Path, keep: float = 0.6) -> Path:
    """A faststart MP4 (index first) cut inside its mdat: the index promises more."""
    full = clip(path.with_suffix(".full.mp4"), seconds=4, extra=("-movflags", "+faststart"))
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return path


def animated_gif(path: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=80x60:rate=10:duration=1", "-f", "gif", str(path))
    return path


def rotated(path: Path) -> Path:
    """A 320x240 clip flagged to be shown rotated by 90 degrees (portrait 240x320)."""
    src = clip(path.with_suffix(".src.mp4"), seconds=2, size="320x240")
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    src.unlink()
    return path


def mov_box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def build_corpus(d: Path, listener_url: str) -> dict[str, Path]:
    """Every hostile file the tests feed to uploads and to the worker, generated into ``d``.
    Playlists and manifests name the loopback ``listener_url`` or a local file whose red
    frames nobody uploaded, so a test can prove neither is ever read."""
    local = local_secret_ts(d / "local-secret.ts")
    return {
        "hls_http": hls_playlist(d / "hls_http.mp4", f"{listener_url}/seg.ts"),
        "hls_file": hls_playlist(d / "hls_file.mp4", f"file://{local}"),
        "hls_relative": hls_playlist(d / "hls_rel.mp4", "local-secret.ts"),
        "mpd_absolute": dash_mpd(d / "mpd_abs.mp4", f"{listener_url}/"),
        "mpd_relative": dash_mpd(d / "mpd_rel.mp4", "../0123456789abcdef0123456789abcdef/original"),
        "concat": concat_list(d / "concat.mp4", str(local)),
        "gap": timestamp_gap(d / "gap.mkv"),
        "huge": huge_still(d / "huge.mov"),
        "tiny": clip(d / "tiny.mp4", size="64x36"),
        "still_over_sound": still_over_sound(d / "still_over_sound.mp4"),
        "rate": absurd_rate(d / "rate.mkv"),
        "streams": many_streams(d / "streams.mkv"),
        "truncated": truncated_mdat(d / "truncated.mp4"),
        "gif": animated_gif(d / "anim.mp4"),
        "rotated": rotated(d / "rotated.mp4"),
        "local": local,
    }


@pytest.fixture(scope="module")
def listener():
    """A loopback HTTP listener that records every request (none may ever arrive)."""
    with Listener() as lst:
        yield lst


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, listener):
    return build_corpus(tmp_path_factory.mktemp("hostile"), listener.url)
