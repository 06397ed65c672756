"""Extensions created unbound, attached in create_app."""
from flask import current_app

from svcommon.db import Database
from svcommon.filestore import FileStore

db = Database()


def init_filestore(app) -> None:
    app.extensions["upload.filestore"] = FileStore.from_config(app.config, "upload")


def filestore() -> FileStore:
    return current_app.extensions["upload.filestore"]
