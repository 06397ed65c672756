"""Per-session manifests, built from the processed media's metadata (video_media), never
from S3 (docs/api.md, "Manifests"). Each segment is listed by its shared, cacheable URL
``/media/{video}/{rendition}/{index:05d}-{keyed name}.m4s`` of the variant the session's
codeword picks (the caller supplies ``segment_urls``); keyed names say nothing about A or B.
Init segments are per session (they carry the metadata tag): ``init_url``. Caption tracks
are one text AdaptationSet per language, a whole WebVTT file each (``Caption.url``). A video
with a storyboard (svcommon.storyboards) also gets a DASH-IF thumbnail AdaptationSet whose
sprites, like its WebVTT track, are under the session's own path (delivery.py): they show the
picture, so only a live session with access to the video reads them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable
from xml.sax.saxutils import escape, quoteattr

from svcommon.codeword import UNIFORM_CODE, Code
from svcommon.storyboards import Storyboard, VTT_NAME

InitUrl = Callable[[str], str]              # rendition -> URL
SegmentUrls = Callable[[str, int], list[str]]   # (rendition, count) -> URLs of indices 0..count-1

AUDIO = "audio"
STORYBOARD_DIR = "storyboard/"               # relative to the session's base URL
STORYBOARD_VTT = STORYBOARD_DIR + VTT_NAME


@dataclass(frozen=True)
class Media:
    """What delivery and manifests need from video_media.metadata, parsed once per video."""
    video_id: str
    duration: float
    segment_count: int
    segment_durations: list[float]
    fps: str
    renditions: dict[str, dict]        # name -> rendition metadata, largest first
    audio: dict | None
    ladder_complete: bool = True       # False while higher rungs are still being encoded
    storyboard: Storyboard | None = None   # seek previews, once made
    code: Code = UNIFORM_CODE          # which codeword picks a session's variants (svcommon.codeword)

    @classmethod
    def from_row(cls, video_id: str, row: dict) -> "Media":
        meta = json.loads(row["metadata"])
        board = row.get("storyboard")
        return cls(video_id, float(meta["duration"]), int(meta["segment_count"]),
                   [float(d) for d in meta["segment_durations"]], str(meta.get("fps", "30/1")),
                   {r["name"]: r for r in meta["renditions"]}, meta.get("audio"),
                   bool(meta.get("ladder_complete", True)), Storyboard.from_json(board) if board else None,
                   Code.of_metadata(video_id, meta))

    def segments_of(self, rendition: str) -> int:
        if rendition == AUDIO:
            return len(self.audio["segment_sizes"]) if self.audio else 0
        return self.segment_count if rendition in self.renditions else 0


@dataclass(frozen=True)
class Caption:
    """A caption track as a session's manifest lists it."""
    lang: str
    label: str
    url: str


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _timeline(durations: list[float], timescale: int) -> str:
    """<S> runs from cumulative rounding, so rounding errors never accumulate."""
    out, t, prev_end, run = [], 0.0, 0, None
    for d in durations:
        t += d
        end = round(t * timescale)
        dur = end - prev_end
        if run and run[1] == dur:
            run[2] += 1
        else:
            if run:
                out.append(run)
            run = [prev_end, dur, 0]
        prev_end = end
    if run:
        out.append(run)
    parts = []
    for i, (start, dur, repeat) in enumerate(out):
        attrs = (f' t="{start}"' if i == 0 else "") + f' d="{dur}"' + (f' r="{repeat}"' if repeat else "")
        parts.append(f"<S{attrs}/>")
    return "<SegmentTimeline>" + "".join(parts) + "</SegmentTimeline>"


# What an attribute value must not hold as is (quoteattr's escapes). Segment URLs never do
# (hex names), so they skip quoteattr, which was half the manifest's cost: a 2-hour video lists
# 14400 of them (bench/delivery/manifest_cost.py).
_NEEDS_ESCAPE = re.compile(r'["<>&\n\r\t]').search


def _attr(value: str) -> str:
    return quoteattr(value) if _NEEDS_ESCAPE(value) else f'"{value}"'


def _segment_list(rendition: str, durations: list[float], timescale: int, init_url: InitUrl,
                  segment_urls: SegmentUrls) -> str:
    urls = "".join([f"<SegmentURL media={_attr(u)}/>" for u in segment_urls(rendition, len(durations))])
    return (f'<SegmentList timescale="{timescale}">'
            f'<Initialization sourceURL={quoteattr(init_url(rendition))}/>'
            + _timeline(durations, timescale) + urls + "</SegmentList>")


def _text_sets(captions: list[Caption], first_id: int) -> list[str]:
    return [f'<AdaptationSet id="{first_id + i}" contentType="text" mimeType="text/vtt" lang={quoteattr(c.lang)}>'
            '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>'
            f'<Label>{escape(c.label)}</Label>'
            f'<Representation id="text-{first_id + i}" bandwidth="256"><BaseURL>{escape(c.url)}</BaseURL>'
            '</Representation></AdaptationSet>' for i, c in enumerate(captions)]


def dash_mpd(media: Media, init_url: InitUrl, segment_urls: SegmentUrls, captions: list[Caption] = ()) -> str:
    reps = []
    for r in media.renditions.values():
        reps.append(f'<Representation id={quoteattr(r["name"])} bandwidth="{int(r["bandwidth"])}" '
                    f'width="{int(r["width"])}" height="{int(r["height"])}" codecs={quoteattr(r["codecs"])} '
                    f'frameRate={quoteattr(media.fps)} sar="1:1">'
                    + _segment_list(r["name"], media.segment_durations, 90000, init_url, segment_urls)
                    + "</Representation>")
    sets = [f'<AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" '
            f'startWithSAP="1">{"".join(reps)}</AdaptationSet>']
    if media.audio:
        a = media.audio
        sets.append(f'<AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und" '
                    f'segmentAlignment="true" startWithSAP="1">'
                    f'<Representation id="{AUDIO}" bandwidth="{int(a["bandwidth"])}" '
                    f'codecs={quoteattr(a["codecs"])} audioSamplingRate="48000">'
                    '<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" '
                    'value="2"/>'
                    + _segment_list(AUDIO, a["segment_durations"], 48000, init_url, segment_urls)
                    + '</Representation></AdaptationSet>')
    sets += _text_sets(list(captions), len(sets))
    if media.storyboard:
        sets.append(_thumbnail_set(media.storyboard, len(sets)))
    # isoff-main: the live profile allows only SegmentTemplate, and each session's list of
    # URLs differs per index (its codeword), which a template cannot express.
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-main:2011" '
            f'type="static" mediaPresentationDuration="{_duration(media.duration)}" minBufferTime="PT2S">'
            f'<Period id="0" start="PT0S">{"".join(sets)}</Period></MPD>\n')


def _thumbnail_set(board: Storyboard, set_id: int) -> str:
    """DASH-IF IOP thumbnails: each sprite a segment of columns × rows tiles, one tile per
    ``interval`` seconds; sprite URLs relative to the manifest (the session's path)."""
    seconds = board.interval * board.per_sprite
    bandwidth = max(1, 8 * max(board.sprite_bytes or (1,)) // seconds)
    return (f'<AdaptationSet id="{set_id}" contentType="image" mimeType="image/jpeg">'
            f'<SegmentTemplate media="{STORYBOARD_DIR}$Number$.jpg" timescale="1" duration="{seconds}" '
            f'startNumber="1"/>'
            f'<Representation id="storyboard" bandwidth="{bandwidth}" width="{board.sprite_width}" '
            f'height="{board.sprite_height}">'
            f'<EssentialProperty schemeIdUri="http://dashif.org/thumbnail_tile" '
            f'value="{board.columns}x{board.rows}"/></Representation></AdaptationSet>')


def hls_master(media: Media) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_attr = ""
    if media.audio:
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,'
                     f'URI="{AUDIO}/index.m3u8"')
        audio_attr = ',AUDIO="aud"'
    for r in media.renditions.values():
        codecs = r["codecs"] + ("," + media.audio["codecs"] if media.audio else "")
        bw = int(r["bandwidth"]) + (int(media.audio["bandwidth"]) if media.audio else 0)
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={bw},AVERAGE-BANDWIDTH={int(r["average_bandwidth"])},'
                     f'RESOLUTION={int(r["width"])}x{int(r["height"])},CODECS="{codecs}"{audio_attr}')
        lines.append(f'{r["name"]}/index.m3u8')
    return "\n".join(lines) + "\n"


def durations_of(media: Media, rendition: str) -> list[float]:
    return media.audio["segment_durations"] if rendition == AUDIO else media.segment_durations


def hls_media(media: Media, rendition: str, init_url: InitUrl, segment_urls: SegmentUrls) -> str:
    durations = durations_of(media, rendition)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{max(1, round(max(durations)))}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", f'#EXT-X-MAP:URI="{init_url(rendition)}"']
    for d, url in zip(durations, segment_urls(rendition, len(durations))):
        lines += [f"#EXTINF:{d:.6f},", url]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
