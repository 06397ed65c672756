"""Extensions created unbound, attached in create_app."""
from .s3client import S3

store = S3()
