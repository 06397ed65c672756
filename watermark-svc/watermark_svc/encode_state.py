"""What a video's chunk and audio jobs share, as planned by its 'video.process' job
(stored as video_encodes.plan, JSON): the probe facts, the JobPlan, the encode settings,
the chunks, and the metadata assembled from whatever has completed."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

from svcommon.mediaprobe import ProbeResult

from .media import pipeline
from .media.chunks import Chunk, ChunkResult, RungOutput
from .media.ffmpeg_cmd import EncodeSettings
from .media.ladder import Rung
from .media.plan import JobPlan

VIDEO_CHUNK = "video.chunk"         # payload {rung, chunk}: one rung of one chunk (chunk_jobs.py)
VIDEO_AUDIO = "video.audio"         # the audio task
VIDEO_REFERENCE = "video.reference"  # the forensic reference (handlers.py), once the ladder is under way
VIDEO_STORYBOARD = "video.storyboard"  # seek-preview sprites + WebVTT track (storyboards.py)
# The jobs that read the worker's local copy of the original (originals.py): the last of
# them to finish drops it.
ORIGINAL_READERS = (VIDEO_CHUNK, VIDEO_AUDIO, VIDEO_REFERENCE, VIDEO_STORYBOARD)
# Relative to the planning job's priority ('video.process', 0 from upload-svc): the
# lowest rung and audio above it (they make videos playable), higher rungs below it (after
# any waiting video's planning), the storyboard with them (queued after the video's chunks:
# claimed after them), the forensic reference after those; detections (-10) last.
AUDIO_PRIORITY = LOWEST_RUNG_PRIORITY = 5
HIGHER_RUNG_PRIORITY = STORYBOARD_PRIORITY = -1
REFERENCE_PRIORITY = -2


@dataclass(frozen=True)
class EncodeState:
    info: ProbeResult
    plan: JobPlan
    settings: EncodeSettings
    strength: float
    chunks: tuple[Chunk, ...]

    @property
    def lowest(self) -> Rung:
        return self.plan.rungs[-1]          # plan.rungs: largest first

    def rung(self, name: str) -> Rung:
        return next(r for r in self.plan.rungs if r.name == name)

    def to_json(self) -> dict:
        info = {**asdict(self.info), "display_aspect": str(self.info.display_aspect), "fps": str(self.info.fps)}
        return {"info": info,
                "plan": {"fps": str(self.plan.fps), "frames_per_segment": self.plan.frames_per_segment,
                         "mezz_width": self.plan.mezz_width, "mezz_height": self.plan.mezz_height,
                         "rungs": [asdict(r) for r in self.plan.rungs],
                         "seek_margin_s": self.plan.seek_margin_s, "deinterlace": self.plan.deinterlace,
                         "color": self.plan.color, "seek_lead_s": self.plan.seek_lead_s,
                         "video_decoder": self.plan.video_decoder},
                "settings": {"preset": self.settings.preset, "threads": self.settings.threads},
                "strength": self.strength,
                "chunks": [[c.first_segment, c.segment_count] for c in self.chunks]}

    @classmethod
    def from_json(cls, d: dict) -> "EncodeState":
        info = ProbeResult(**{**d["info"], "display_aspect": Fraction(d["info"]["display_aspect"]),
                              "fps": Fraction(d["info"]["fps"])})
        p = d["plan"]
        plan = JobPlan(Fraction(p["fps"]), int(p["frames_per_segment"]), int(p["mezz_width"]),
                       int(p["mezz_height"]), tuple(Rung(**r) for r in p["rungs"]),
                       float(p.get("seek_margin_s", 0.0)), bool(p.get("deinterlace", False)),
                       str(p.get("color", "")),         # planned before these existed: 0, no, as is, 0, ffmpeg's
                       float(p.get("seek_lead_s", 0.0)), str(p.get("video_decoder", "")))
        settings = EncodeSettings(plan.fps, plan.frames_per_segment, d["settings"]["preset"],
                                  int(d["settings"]["threads"]))
        chunks = tuple(Chunk(i, first, count, plan.frames_per_segment)
                       for i, (first, count) in enumerate(d["chunks"]))
        return cls(info, plan, settings, float(d["strength"]), chunks)


def result_json(res: ChunkResult, rung: str) -> dict:
    out = res.rungs[rung]
    return {"frames": res.frames, "durations": res.durations, "codecs": out.codecs,
            "init_size": out.init_size, "sizes": out.sizes}


def complete_rungs(state: EncodeState, done: dict[str, int]) -> list[str]:
    """Rungs (largest first) whose every chunk is done (``done``: done chunks per rung,
    repository.done_counts)."""
    return [r.name for r in state.plan.rungs if done.get(r.name, 0) >= len(state.chunks)]


def metadata(state: EncodeState, video_id: str, rows: list[dict], audio: dict | None,
             given_up: frozenset[str] = frozenset()) -> dict:
    """The video's metadata (pipeline.assemble_metadata's shape) listing only complete rungs;
    ``given_up``: rungs a dead chunk job will never complete."""
    done: dict[str, int] = {}
    for r in rows:
        done[r["rung"]] = done.get(r["rung"], 0) + (r["result"] is not None)
    ready = set(complete_rungs(state, done))
    results = []
    for r in rows:
        if r["rung"] in ready:
            res = r["result"]
            chunk = state.chunks[r["chunk_index"]]
            results.append(ChunkResult(chunk, int(res["frames"]), [float(x) for x in res["durations"]],
                                       {r["rung"]: RungOutput(r["rung"], res["codecs"], int(res["init_size"]),
                                                              res["sizes"])}))
    meta = pipeline.assemble_metadata(video_id, state.info, state.plan, state.settings, state.strength,
                                      state.chunks, results, audio, 0.0)
    # streaming-svc caches a video's metadata only once its ladder can no longer grow:
    # every rung complete, or given up.
    meta["ladder_complete"] = all(r.name in ready or r.name in given_up for r in state.plan.rungs)
    return meta


def encode_message(state: EncodeState, done: dict[str, int]) -> str:
    """The uploader's stage line: 'playable at 360p · 480p 40 %' (or 'encoding 360p 20 %')."""
    ready = complete_rungs(state, done)
    pending = [r.name for r in reversed(state.plan.rungs) if r.name not in ready]
    parts = [f"playable at {state.lowest.name}"] if state.lowest.name in ready else []
    for name in pending[:1]:
        pct = 100 * done.get(name, 0) // len(state.chunks)
        parts.append(f"{name} {pct} %" if parts else f"encoding {name} {pct} %")
    return " · ".join(parts)


def chunk_priority(state: EncodeState, rung: str, base: int) -> int:
    """Relative to the planning job's priority ``base`` (0 from upload-svc)."""
    return base + (LOWEST_RUNG_PRIORITY if rung == state.lowest.name else HIGHER_RUNG_PRIORITY)
