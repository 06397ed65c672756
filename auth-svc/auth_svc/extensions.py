"""Extensions created unbound, attached in create_app (flaskr style)."""
from svcommon.db import Database

db = Database()
