"""Webhook endpoints by API (/api/webhooks; contract: docs/api.md "Webhooks"): an owner
registers, lists, changes, deletes endpoints for the events of their own videos, rotates an
endpoint's signing secret (shown once), sends a test event and redelivers an attempt's
event; an administrator sees and manages everybody's and may register endpoints for every
video's events (``all_videos``). Another owner's endpoint is a 404."""
from __future__ import annotations

import base64
import os
import re
import uuid

from flask import Blueprint, current_app, jsonify

from svcommon import jobqueue as queue
from svcommon import webhooks
from svcommon.auth import Principal, require_principal
from svcommon.errors import APIError
from svcommon.timeutil import iso
from svcommon.openapi import SIGNED_IN, responses, validated_json

from . import repository as repo
from .extensions import api, db
from .webhook_delivery import sealer
from .webhook_targets import TargetRefused, resolve
from . import schemas as S

bp = Blueprint("webhooks_api", __name__, url_prefix="/api/webhooks")
HEX32 = re.compile(r"[0-9a-f]{32}")
MAX_ENDPOINTS_PER_USER = 10


def new_secret() -> str:
    return "whsec_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


def endpoint_view(e: repo.Endpoint, conn=None) -> dict:
    out = {"id": e.id, "owner_id": e.owner_id, "owner": e.owner, "url": e.url, "description": e.description,
           "events": list(e.events), "all_videos": e.all_videos, "enabled": e.enabled,
           "disabled_reason": e.disabled_reason, "created_at": iso(e.created_at)}
    if conn is not None:
        out["attempts"] = [attempt_view(a) for a in repo.attempts(conn, e.id)]
    return out


def attempt_view(a: dict) -> dict:
    return {"id": a["id"], "event_id": a["event_id"], "event_type": a["event_type"], "attempt": a["attempt"],
            "outcome": a["outcome"], "status_code": a["status_code"], "latency_ms": a["latency_ms"],
            "error": a["error"], "at": iso(a["created_at"])}


def _visible(conn, endpoint_id: str, p: Principal, for_update: bool = False) -> repo.Endpoint:
    e = repo.endpoint(conn, endpoint_id, for_update) if HEX32.fullmatch(endpoint_id) else None
    if e is None or (e.owner_id != p.user_id and not p.is_admin):
        raise APIError(404, "not_found", "no such webhook endpoint")
    return e


@bp.get("")
@api.validate(resp=responses({"HTTP_200": S.WebhookList}, 401, 403), tags=["webhooks"], security=SIGNED_IN)
def list_endpoints():
    p = require_principal()
    conn = db.conn()
    return jsonify(items=[endpoint_view(e) for e in repo.endpoints(conn, None if p.is_admin else p.user_id)])


@bp.post("")
@api.validate(json=S.NewWebhook, resp=responses({"HTTP_201": S.WebhookWithSecret}, 400, 401, 403, 409, 422), tags=["webhooks"], security=SIGNED_IN)
def create():
    p = require_principal()
    asked: S.NewWebhook = validated_json()
    if asked.all_videos and not p.is_admin:
        raise APIError(403, "forbidden", "only administrators may subscribe to every video's events")
    try:
        resolve(asked.url, bool(current_app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"]))
    except TargetRefused as exc:
        raise APIError(422, "webhook_url_refused", str(exc), fields={"url": [str(exc)]}) from None
    conn = db.conn()
    repo.lock_owner(conn, p.user_id)
    if repo.count_endpoints(conn, p.user_id) >= MAX_ENDPOINTS_PER_USER:
        conn.rollback()
        raise APIError(409, "too_many_webhooks", f"at most {MAX_ENDPOINTS_PER_USER} endpoints per account")
    endpoint_id, secret = uuid.uuid4().hex, new_secret()
    repo.insert_endpoint(conn, endpoint_id, p.user_id, asked.url, asked.description, asked.events,
                         asked.all_videos, sealer(current_app.config).seal(secret.encode(), endpoint_id))
    conn.commit()
    current_app.logger.info("webhook endpoint registered", extra={"endpoint": endpoint_id, "by": p.user_id})
    return jsonify({**endpoint_view(repo.endpoint(conn, endpoint_id)), "secret": secret}), 201


@bp.get("/<endpoint_id>")
@api.validate(resp=responses({"HTTP_200": S.Webhook}, 401, 403, 404), tags=["webhooks"], security=SIGNED_IN)
def read(endpoint_id: str):
    p = require_principal()
    conn = db.conn()
    return jsonify(endpoint_view(_visible(conn, endpoint_id, p), conn))


@bp.patch("/<endpoint_id>")
@api.validate(json=S.WebhookChange, resp=responses({"HTTP_200": S.Webhook}, 400, 401, 403, 404), tags=["webhooks"], security=SIGNED_IN)
def change(endpoint_id: str):
    p = require_principal()
    asked: S.WebhookChange = validated_json()
    conn = db.conn()
    _visible(conn, endpoint_id, p, for_update=True)
    repo.update_endpoint(conn, endpoint_id, **asked.model_dump(exclude_none=True))
    conn.commit()
    return jsonify(endpoint_view(repo.endpoint(conn, endpoint_id), conn))


@bp.delete("/<endpoint_id>")
@api.validate(resp=responses({"HTTP_204": None}, 401, 403, 404), tags=["webhooks"], security=SIGNED_IN)
def delete(endpoint_id: str):
    p = require_principal()
    conn = db.conn()
    _visible(conn, endpoint_id, p, for_update=True)
    queue.forget(conn, endpoint_id)          # its deliveries still waiting (a running one just ends)
    repo.delete_endpoint(conn, endpoint_id)
    conn.commit()
    current_app.logger.info("webhook endpoint deleted", extra={"endpoint": endpoint_id, "by": p.user_id})
    return "", 204


@bp.post("/<endpoint_id>/rotate-secret")
@api.validate(resp=responses({"HTTP_200": S.RotatedSecret}, 401, 403, 404), tags=["webhooks"], security=SIGNED_IN)
def rotate_secret(endpoint_id: str):
    """A new secret at once (deliveries from now on are signed with it); shown this once."""
    p = require_principal()
    conn = db.conn()
    _visible(conn, endpoint_id, p, for_update=True)
    secret = new_secret()
    repo.set_endpoint_secret(conn, endpoint_id, sealer(current_app.config).seal(secret.encode(), endpoint_id))
    conn.commit()
    return jsonify(id=endpoint_id, secret=secret)


@bp.post("/<endpoint_id>/test")
@api.validate(resp=responses({"HTTP_202": S.Queued}, 401, 403, 404, 409), tags=["webhooks"], security=SIGNED_IN)
def send_test(endpoint_id: str):
    p = require_principal()
    conn = db.conn()
    e = _visible(conn, endpoint_id, p)
    event_id = webhooks.new_event(conn, webhooks.TEST_EVENT, {"endpoint_id": e.id, "message": "a test event"})
    job_id = webhooks.enqueue_delivery(conn, e.id, event_id)
    conn.commit()
    return jsonify(event_id=event_id, job_id=job_id), 202


@bp.post("/<endpoint_id>/attempts/<int:attempt_id>/redeliver")
@api.validate(resp=responses({"HTTP_202": S.Queued}, 401, 403, 404, 409), tags=["webhooks"], security=SIGNED_IN)
def redeliver(endpoint_id: str, attempt_id: int):
    """The attempt's event again, as a new delivery (same event id: receivers deduplicate)."""
    p = require_principal()
    conn = db.conn()
    e = _visible(conn, endpoint_id, p)
    att = repo.attempt(conn, e.id, attempt_id)
    if att is None:
        raise APIError(404, "not_found", "no such attempt")
    if repo.webhook_event(conn, att["event_id"]) is None:
        raise APIError(410, "event_expired", f"events are kept {webhooks.EVENT_KEEP_DAYS} days")
    job_id = webhooks.enqueue_delivery(conn, e.id, att["event_id"])
    conn.commit()
    return jsonify(event_id=att["event_id"], job_id=job_id), 202
