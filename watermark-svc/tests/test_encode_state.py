"""The plan a video's chunk and audio jobs share is stored as JSON (video_encodes.plan):
every field comes back as it was, and a plan stored before a field existed reads it as
its neutral value."""
from __future__ import annotations

import json
from fractions import Fraction

from svcommon.mediaprobe import ProbeResult
from watermark_svc.encode_state import EncodeState
from watermark_svc.media.chunks import Chunk
from watermark_svc.media.ffmpeg_cmd import EncodeSettings
from watermark_svc.media.ladder import Rung
from watermark_svc.media.plan import JobPlan


def _state() -> EncodeState:
    info = ProbeResult(width=640, height=360, display_aspect=Fraction(16, 9), fps=Fraction(30000, 1001),
                       duration_s=95.5, video_codec="h264", has_audio=True, audio_codec="aac", bitrate=900000,
                       container="mpegts", seek_margin_s=1.7, seek_lead_s=1.7, interlaced=True, color="hlg",
                       video_frames=2862, audio_overhang_s=0.4, audio_index=2)
    plan = JobPlan(fps=Fraction(30000, 1001), frames_per_segment=60, mezz_width=640, mezz_height=360,
                   rungs=(Rung("360p", 640, 360, 800, 856, 1600),), seek_margin_s=1.7, deinterlace=True,
                   color="hlg", seek_lead_s=41.0)
    chunks = (Chunk(0, 0, 62, 60), Chunk(1, 62, None, 60))
    return EncodeState(info, plan, EncodeSettings(plan.fps, 60, "veryfast", 2), 1.0, chunks)


def test_a_stored_plan_reads_back_as_it_was():
    state = _state()
    assert EncodeState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_a_plan_stored_before_a_field_existed_reads_its_neutral_value():
    stored = _state().to_json()
    for key in ("seek_margin_s", "deinterlace", "color", "seek_lead_s"):
        del stored["plan"][key]
    for key in ("seek_margin_s", "seek_lead_s", "interlaced", "color", "video_frames", "audio_overhang_s",
                "audio_index"):
        del stored["info"][key]
    back = EncodeState.from_json(json.loads(json.dumps(stored)))
    plan = back.plan
    assert (plan.seek_margin_s, plan.deinterlace, plan.color, plan.seek_lead_s) == (0.0, False, "", 0.0)
    assert back.info.seek_lead_s == 0.0 and back.info.video_frames == 0 and back.info.audio_index is None
    assert back.plan.rungs == _state().plan.rungs
