"""file-svc settings (env)."""
from svcommon.config import Setting

SETTINGS: list[Setting] = []
