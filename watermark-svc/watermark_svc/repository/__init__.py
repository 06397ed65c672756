"""All of watermark-svc's SQL, by concern (the queue's own SQL is svcommon.jobqueue's):
videos (status, published media), media (v1 → v2 conversion), forensics (detections,
catalogue, sessions), console (the security console's pages), chunks (chunked encoding),
dashboard (the admin dashboard's figures), storyboards (seek previews), webhooks (endpoints,
events, attempts). Callers keep
``from . import repository as repo`` and ``repo.<function>``."""
from .chunks import *  # noqa: F401,F403
from .console import *  # noqa: F401,F403
from .dashboard import *  # noqa: F401,F403
from .forensics import *  # noqa: F401,F403
from .media import *  # noqa: F401,F403
from .storyboards import *  # noqa: F401,F403
from .videos import *  # noqa: F401,F403
from .webhooks import *  # noqa: F401,F403
