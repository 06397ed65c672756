"""Extensions created unbound, attached in create_app (the worker builds the same app)."""
from svcommon.db import Database
from svcommon.filestore import FileStoreExtension
from svcommon.openapi import service_spec

db = Database()
filestore = FileStoreExtension("watermark")

# The OpenAPI document of watermark-svc's public API (svcommon.openapi), attached in create_app.
api = service_spec("watermark-svc", "forensics (leak tracing), admin dashboard, job queue, security console, webhooks")
