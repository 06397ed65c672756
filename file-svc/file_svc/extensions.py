"""Extensions created unbound, attached in create_app."""
from svcommon.appext import PerApp

from .s3client import S3Store

s3 = PerApp("file.s3", S3Store)
