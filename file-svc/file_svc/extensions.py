"""Extensions created unbound, attached in create_app."""
from svcommon.appext import PerApp
from svcommon.openapi import service_spec

from svcommon.partbuffers import PartBuffers
from .s3client import S3Store

s3 = PerApp("file.s3", S3Store)
# Reused part buffers (svcommon.partbuffers), at most FILE_KEEP_BUFFER_BYTES kept idle per process.
part_buffers = PerApp("file.part_buffers", lambda cfg: PartBuffers(int(cfg["FILE_KEEP_BUFFER_BYTES"])))

# file-svc's internal API document (its port only; never merged into the public reference).
api = service_spec("file-svc", "internal object storage: only our services, with a service token")
