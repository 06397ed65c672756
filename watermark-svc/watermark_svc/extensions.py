"""Extensions created unbound, attached in create_app (the worker builds the same app)."""
from svcommon.db import Database
from svcommon.filestore import FileStoreExtension

db = Database()
filestore = FileStoreExtension("watermark")
