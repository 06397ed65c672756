"""Security events (failed logins, bad tokens, bad proofs, replays, limit hits), stored in
``security_events`` for the admin console and counted in metrics. Recording never breaks
the request that triggered it: a database hiccup is logged and swallowed."""
from __future__ import annotations

import logging
import uuid

from flask import current_app, has_request_context, request

from .db import execute
from .health import SECURITY_EVENTS
from .logs import loggable_path

log = logging.getLogger("svcommon.security_events")


def record(kind: str, detail: str = "", user_id: str | None = None, conn=None, actor_id: str | None = None) -> None:
    """``user_id``: the account the event is about; ``actor_id``: an administrator who acted on
    it (admin_* events), kept apart so the console can filter by either."""
    service = current_app.config.get("SERVICE_NAME", "?")
    SECURITY_EVENTS.labels(service, kind).inc()
    ip = request.remote_addr if has_request_context() else None
    path = loggable_path(request.path) if has_request_context() else None
    log.warning("security event", extra={"event": kind, "detail": detail[:300], "user_id": user_id,
                                         "actor_id": actor_id, "client": ip})
    db = current_app.extensions.get("svcommon.db")
    if db is None:
        return
    sql = ("INSERT INTO security_events (id, kind, service, user_id, actor_id, ip, path, detail) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
    params = (uuid.uuid4().hex, kind[:40], service[:40], user_id, actor_id, (ip or "")[:64], (path or "")[:255],
              detail[:1000])
    try:
        if conn is not None:
            execute(conn, sql, params)
            return
        with db.standalone() as c:
            execute(c, sql, params)
            c.commit()
    except Exception as exc:
        log.error("could not store security event", extra={"error": str(exc)})
