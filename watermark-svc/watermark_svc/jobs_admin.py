"""Admin API over the job queue: list jobs (the dead-letter view: ?status=dead) and retry a
dead one. Contract: docs/api.md (Job queue)."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, request

from svcommon import jobqueue as queue
from svcommon.auth import require_principal
from svcommon.errors import APIError
from svcommon.params import arg_int
from svcommon.timeutil import iso
from svcommon.openapi import SIGNED_IN, responses

from .extensions import api, db
from .forensics_api import HEX32
from .jobs import handlers
from . import schemas as S

bp = Blueprint("jobs_admin", __name__, url_prefix="/api/admin/jobs")


def _view(row: dict) -> dict:
    return {"id": row["id"], "kind": row["kind"], "subject": row["subject"], "status": row["status"],
            "priority": row["priority"], "attempts": row["attempts"], "max_attempts": row["max_attempts"],
            "progress": row["progress"], "step": row["step"], "last_error": row["last_error"],
            "payload": json.loads(row["payload"]) if row["payload"] else {},
            "run_after": iso(row["run_after"]), "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]), "finished_at": iso(row["finished_at"])}


@bp.get("")
@api.validate(query=S.JobQuery, resp=responses({"HTTP_200": S.Jobs}, 400, 401, 403), tags=["admin"], security=SIGNED_IN)
def list_jobs():
    require_principal(roles=("admin",))
    status = request.args.get("status") or None
    if status is not None and status not in queue.STATUSES:
        raise APIError(400, "invalid_input", f"status must be one of {', '.join(queue.STATUSES)}")
    limit = min(200, arg_int("limit", 50, maximum=1_000_000))
    rows = queue.listing(db.conn(), status, request.args.get("kind") or None, limit)
    return jsonify(items=[_view(r) for r in rows])


@bp.post("/<job_id>/retry")
@api.validate(resp=responses({"HTTP_200": S.Job}, 401, 403, 404, 409), tags=["admin"], security=SIGNED_IN)
def retry(job_id: str):
    """A dead job goes back to the queue with a fresh set of attempts; its subject (the video,
    the detection) shows it is waiting again."""
    admin = require_principal(roles=("admin",))
    conn = db.conn()
    row = queue.get(conn, job_id, for_update=True) if HEX32.match(job_id) else None
    if row is None:
        raise APIError(404, "not_found", "no such job")
    if not queue.requeue_dead(conn, job_id):
        raise APIError(409, "job_not_dead", f"only a dead job can be retried; this one is {row['status']}")
    handler = handlers().get(row["kind"])
    if handler is not None and handler.on_requeue is not None:
        handler.on_requeue(conn, queue.Job(id=row["id"], kind=row["kind"], payload={}, subject=row["subject"],
                                           priority=row["priority"], attempts=0, max_attempts=row["max_attempts"]))
    conn.commit()
    current_app.logger.info("dead job retried", extra={"job": job_id, "kind": row["kind"], "by": admin.user_id})
    return jsonify(_view(queue.get(conn, job_id)))
