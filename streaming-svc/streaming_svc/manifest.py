"""Per-session manifests, built from the processed media's metadata (video_media), never
from S3. Segment URLs are relative to the session's opaque base URL and name only the
rendition and index: which A/B variant stands behind each is decided at delivery time
by the session's codeword, so nothing in a manifest or URL reveals it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

AUDIO = "audio"


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

    @classmethod
    def from_row(cls, video_id: str, row: dict) -> "Media":
        meta = json.loads(row["metadata"])
        return cls(video_id, float(meta["duration"]), int(meta["segment_count"]),
                   [float(d) for d in meta["segment_durations"]], str(meta.get("fps", "30/1")),
                   {r["name"]: r for r in meta["renditions"]}, meta.get("audio"))

    def segments_of(self, rendition: str) -> int:
        if rendition == AUDIO:
            return len(self.audio["segment_sizes"]) if self.audio else 0
        return self.segment_count if rendition in self.renditions else 0


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


def _template(durations: list[float], timescale: int) -> str:
    return (f'<SegmentTemplate timescale="{timescale}" initialization="$RepresentationID$/init.mp4" '
            f'media="$RepresentationID$/$Number%05d$.m4s" startNumber="0">'
            + _timeline(durations, timescale) + "</SegmentTemplate>")


def dash_mpd(media: Media) -> str:
    reps = []
    for r in media.renditions.values():
        reps.append(f'<Representation id={quoteattr(r["name"])} bandwidth="{int(r["bandwidth"])}" '
                    f'width="{int(r["width"])}" height="{int(r["height"])}" codecs={quoteattr(r["codecs"])} '
                    f'frameRate={quoteattr(media.fps)} sar="1:1"/>')
    sets = [f'<AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" '
            f'startWithSAP="1">{_template(media.segment_durations, 90000)}{"".join(reps)}</AdaptationSet>']
    if media.audio:
        a = media.audio
        sets.append(f'<AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und" '
                    f'segmentAlignment="true" startWithSAP="1">{_template(a["segment_durations"], 48000)}'
                    f'<Representation id="{AUDIO}" bandwidth="{int(a["bandwidth"])}" '
                    f'codecs={quoteattr(a["codecs"])} audioSamplingRate="48000">'
                    '<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" '
                    'value="2"/></Representation></AdaptationSet>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" '
            f'type="static" mediaPresentationDuration="{_duration(media.duration)}" minBufferTime="PT2S">'
            f'<Period id="0" start="PT0S">{"".join(sets)}</Period></MPD>\n')


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


def hls_media(media: Media, rendition: str) -> str:
    durations = media.audio["segment_durations"] if rendition == AUDIO else media.segment_durations
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{max(1, round(max(durations)))}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", '#EXT-X-MAP:URI="init.mp4"']
    for i, d in enumerate(durations):
        lines += [f"#EXTINF:{d:.6f},", f"{i:05d}.m4s"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
