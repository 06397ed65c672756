"""Media processing: probe, ladder, forensic A/B watermarked CMAF packaging.

Pure local files + ffmpeg/ffprobe subprocesses + numpy; no web, DB or S3 here.
"""
from .errors import InvalidMedia, MediaError, ProcessingError
from .ladder import Rung, choose_ladder
from .pipeline import process
from .probe import ProbeResult, probe
from .wmpattern import ramp, segment_pattern

__all__ = ["InvalidMedia", "MediaError", "ProcessingError", "ProbeResult", "Rung",
           "choose_ladder", "probe", "process", "ramp", "segment_pattern"]
