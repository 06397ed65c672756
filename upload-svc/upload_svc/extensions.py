"""Extensions created unbound, attached in create_app."""
from svcommon.db import Database

db = Database()
