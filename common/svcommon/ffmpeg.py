"""The one way any service runs ffmpeg or ffprobe on media a user gave us.

Every upload and every forensic suspect is attacker-controlled input to ffmpeg, so:

- the container is recognised from its first bytes against an allow-list (``sniff``)
  and that demuxer is forced with ``-f``: ffmpeg never guesses, so an HLS playlist, a
  DASH manifest, a concat list or an image sequence renamed ``x.mp4`` is never opened as
  one (those demuxers open further URLs or files named inside the data);
- every run carries ``-protocol_whitelist file,pipe`` and reads a local file or a pipe:
  no URL and no credential ever appears on a command line;
- every child runs in its own process group under rlimits (CPU seconds, address space,
  largest file it may write) and a wall-time timeout (``Bounds``), so a hostile file
  costs at most what we allow and the whole group can be killed at once.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

FFMPEG = os.environ.get("FFMPEG", "ffmpeg")
FFPROBE = os.environ.get("FFPROBE", "ffprobe")
PROTOCOLS = "file,pipe"
SNIFF_BYTES = 4096
MiB = 1024 * 1024


class UnsupportedContainer(Exception):
    """``str(exc)`` is the reason shown to the user (the data is not a container we read)."""


# The demuxers ``sniff`` allows, and their names for people (refusals, the docs).
CONTAINER_NAMES = {"mov": "MP4/MOV", "matroska": "Matroska/WebM", "avi": "AVI", "mpegts": "MPEG-TS",
                   "mpeg": "MPEG-PS", "flv": "FLV", "asf": "Windows Media (ASF/WMV)", "ogg": "Ogg"}
ACCEPTED_CONTAINERS = ", ".join(CONTAINER_NAMES.values())
# The ASF header object's GUID: a Windows Media file (WMV/WMA/ASF) opens with it.
ASF_HEADER_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
# ISO-BMFF / QuickTime top-level box types that may open a file.
_MOV_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


def _is_mpegts(head: bytes) -> bool:
    for packet in (188, 192):               # plain TS, and M2TS (4-byte timecode first)
        start = 0 if packet == 188 else 4
        if len(head) >= start + 3 * packet and all(head[start + i * packet] == 0x47 for i in range(3)):
            return True
    return False


def _refusal(head: bytes) -> str:
    """Why data that is no allowed container is refused (the uploader's message)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u") or text.startswith(b"#ext"):
        return "this is an HLS playlist, not a video file (playlists are not accepted)"
    if text.startswith(b"<?xml") or text.startswith(b"<mpd") or b"<mpd" in text[:512]:
        return "this is an XML/DASH manifest, not a video file (manifests are not accepted)"
    if text.startswith(b"ffconcat") or text.startswith(b"file ") or text.startswith(b"file'"):
        return "this is a concat list, not a video file (lists are not accepted)"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "this is a GIF image (animated GIFs are not accepted; please upload a video file)"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"BM", b"RIFF")) or head[4:12] in (b"ftypavif", b"ftypheic"):
        return "this is a still image, not a video"
    return f"not a recognised video file (accepted containers: {ACCEPTED_CONTAINERS})"


def sniff(head: bytes) -> str:
    """The ffmpeg demuxer for these first bytes, or UnsupportedContainer saying why not."""
    if len(head) >= 12 and head[4:8] in _MOV_BOXES and not head[4:12] in (b"ftypavif", b"ftypheic", b"ftypmif1"):
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if _is_mpegts(head):
        return "mpegts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(ASF_HEADER_GUID):
        return "asf"
    if head.startswith(b"OggS"):
        return "ogg"
    raise UnsupportedContainer(_refusal(head))


# The video stream every command reads: the first that is not a cover picture (ffmpeg's
# "V"), the one the probe judges (svcommon.mediaprobe), whatever the order of the streams.
VIDEO_STREAM = "0:V:0"
# Input options of a decode through the fps filter: keep the filter graph when the picture
# changes size or format mid-stream (an IPTV capture, a screen recording, a WebRTC one).
# Rebuilt, the graph restarted the fps filter, whose start_time then filled the output from
# that instant again with copies of the new first frame: a TS whose 6 s switch from 240p to
# 360p at 3 s gave 89 frames too many (refused as "broken or crafted timestamps"). Kept,
# `scale` adapts to each new input (its output size is fixed), and the fps filter's clock
# runs on.
KEEP_FILTER_GRAPH = ["-reinit_filter", "0"]


def from_file_start(seek: list[str]) -> list[str]:
    """Options before an input (with its seek, ``seek_args``) that time every stream from the
    file's start, with or without a seek: ``-copyts -start_at_zero`` keeps ffmpeg from
    re-timing from the seek point, and a non-zero input offset (a microsecond, far below a
    frame) from re-timing an MPEG-TS or PS from the start of the streams the command reads
    (its "correcting start time"). A video decode and an audio encode then share one origin
    (in sync), and every chunk's decode the grid of a decode from the start."""
    return ["-copyts", "-start_at_zero", *seek, "-itsoffset", "0.000001"]


def seek_args(at_s: float | Fraction, margin_s: float = 0.0) -> list[str]:
    """Input options that seek to at_s seconds from the file's start, aiming margin_s early
    (``svcommon.mediaprobe.ProbeResult.seek_margin_s``), floored to the microsecond (exact
    for a Fraction) so the instant itself is never cut. The frames decoded before at_s are
    the caller's to drop (the ``fps`` filter's start_time, or ``seek_exact``)."""
    micros = _seek_micros(at_s, margin_s)
    return ["-ss", f"{micros // 1_000_000}.{micros % 1_000_000:06d}"] if micros > 0 else []


def seek_exact(at_s: float | Fraction, margin_s: float = 0.0) -> tuple[list[str], list[str]]:
    """(input options, output options) that start the output at at_s: ``seek_args``, then
    an output -ss dropping the frames decoded before at_s. It keeps only frames that start
    at or after at_s, not the one shown at at_s if that started earlier (a still screen):
    for the picture shown at an instant, seek with ``seek_args`` and let the fps filter's
    start_time pick it (media.ffmpeg_cmd.stills_cmd, decode_raw_cmd)."""
    lead = Fraction(at_s) - Fraction(max(0, _seek_micros(at_s, margin_s)), 1_000_000)
    return seek_args(at_s, margin_s), (["-ss", f"{float(lead):.6f}"] if lead > Fraction(1, 2000) else [])


def _seek_micros(at_s: float | Fraction, margin_s: float) -> int:
    return math.floor((Fraction(at_s) - Fraction(margin_s)) * 1_000_000)


def sniff_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as fh:
        return sniff(fh.read(SNIFF_BYTES))


def base(tool: str = FFMPEG) -> list[str]:
    """Start of every argv: quiet, and ffmpeg never reads our stdin. Each input then comes
    from ``input_args`` or ``pipe_input_args`` (forced format, file/pipe protocols only)."""
    return [tool, "-hide_banner", "-loglevel", "error"] + (["-nostdin"] if tool != FFPROBE else [])


def input_args(path: str | os.PathLike, demuxer: str | None = None, video_decoder: str = "") -> list[str]:
    """``-f <demuxer> -i file:<abs path>`` for a local media file. The demuxer is sniffed
    from the file unless given; ``file:`` keeps a name with a colon from being a URL.
    ``video_decoder``: the decoder of the first video stream (VIDEO_STREAM), where the probe
    chose one (mediaprobe.ProbeResult.video_decoder); "": ffmpeg's own."""
    path = os.path.abspath(os.fspath(path))
    fmt = demuxer or sniff_file(path)
    decoder = ["-c:V:0", video_decoder] if video_decoder else []
    # The mov demuxer never follows external data references unless -enable_drefs 1.
    return ["-protocol_whitelist", PROTOCOLS, "-f", fmt, *decoder, "-i", f"file:{path}"]


def pipe_input_args(fmt: str, extra: list[str] | None = None) -> list[str]:
    """A raw stream on our stdin (e.g. frames we produced): forced format, pipe only."""
    return ["-protocol_whitelist", PROTOCOLS, "-f", fmt, *(extra or []), "-i", "pipe:0"]


@dataclass(frozen=True)
class Bounds:
    """What one child may consume. 0 means no limit for that resource."""
    cpu_seconds: int = 300
    memory_bytes: int = 2048 * MiB
    file_bytes: int = 1024 * MiB
    wall_seconds: float = 300.0

    def limited(self, argv: list[str]) -> list[str]:
        """argv run under util-linux ``prlimit``, which sets the limits and execs the
        program: they hold from its first instruction, and no Python runs in the forked
        child (a ``preexec_fn`` can deadlock there when another thread, e.g. a lease
        renewal, holds a lock at fork time; we saw a worker hang that way)."""
        limits = []
        if self.cpu_seconds:
            # soft == hard (prlimit sets both): the kernel SIGKILLs at the limit (ffmpeg
            # would catch SIGXCPU and exit 255, indistinguishable from a decoding error).
            limits.append(f"--cpu={int(self.cpu_seconds)}")
        if self.memory_bytes:
            limits.append(f"--as={int(self.memory_bytes)}")
        if self.file_bytes:
            limits.append(f"--fsize={int(self.file_bytes)}")
        return ["prlimit", *limits, "--", *argv] if limits else list(argv)


class Tracker:
    """The children one piece of work started (from any code path, via ``spawn`` inside
    ``tracking``): ``cancel`` from another thread kills them all and any started later."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen] = []
        self.cancelled: str | None = None

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs = [p for p in self._procs if p.poll() is None] + [proc]
            late = self.cancelled is not None
        if late:
            kill_group(proc)

    def cancel(self, reason: str) -> None:
        with self._lock:
            self.cancelled = reason
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                kill_group(proc)


_current = threading.local()


@contextmanager
def tracking(tracker: Tracker):
    """Children spawned by this thread inside the block are registered with tracker."""
    previous = getattr(_current, "tracker", None)
    _current.tracker = tracker
    try:
        yield tracker
    finally:
        _current.tracker = previous


@contextmanager
def niceness(increment: int):
    """Children spawned by this thread inside the block run ``increment`` nicer (coreutils
    ``nice``, which execs prlimit, which execs the program: nothing runs in the forked
    child, as in Bounds.limited). The job worker uses it for background jobs."""
    previous = current_niceness()
    _current.nice = increment
    try:
        yield
    finally:
        _current.nice = previous


def current_niceness() -> int:
    """What ``niceness`` set for this thread (0 outside it): for helpers that spawn from
    threads of their own on a job's behalf."""
    return getattr(_current, "nice", 0)


def spawn(argv: list[str], bounds: Bounds, *, nice: int | None = None, **kw) -> subprocess.Popen:
    """Start a bounded child in its own process group (killable with ``kill_group``), ``nice``
    nicer (default: what ``niceness`` set for this thread)."""
    nice = current_niceness() if nice is None else nice
    limited = bounds.limited(argv)
    proc = subprocess.Popen(["nice", "-n", str(nice), *limited] if nice else limited, start_new_session=True, **kw)
    tracker = getattr(_current, "tracker", None)
    if tracker is not None:
        tracker.add(proc)
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child and anything it started; harmless once it has exited."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def exceeded(returncode: int | None) -> str | None:
    """Name the bound a child died of (the kernel's signal for each rlimit)."""
    if returncode is None or returncode >= 0:
        return None
    # SIGKILL is the CPU rlimit unless we killed the group ourselves (callers know when).
    return {-signal.SIGXCPU: "CPU time", -signal.SIGKILL: "CPU time",
            -signal.SIGXFSZ: "output file size", -signal.SIGSEGV: "memory"}.get(returncode)


class Timeout(Exception):
    pass


def run(argv: list[str], bounds: Bounds, *, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """Run a bounded child to completion capturing stdout/stderr; Timeout after the wall
    time (the whole group is killed)."""
    proc = spawn(argv, bounds, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=bounds.wall_seconds or None)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        raise Timeout(f"{os.path.basename(argv[0])} exceeded its {bounds.wall_seconds:.0f} s time limit") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
