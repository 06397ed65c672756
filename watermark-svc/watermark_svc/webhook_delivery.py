"""The 'webhook.deliver' job (svcommon.webhooks enqueues it; payload {endpoint_id, event_id}):
one signed POST of the event to the endpoint, recorded as an attempt. A failure (no answer in
WEBHOOK_TIMEOUT_SECONDS, a refused connection, any status but 2xx, a redirect included)
is retried by the queue with its backoff (WORKER_RETRY_BASE_SECONDS * 4^(n-1)) up to
svcommon.webhooks.DELIVERY_MAX_ATTEMPTS, then dead-lettered; a target the address rules
refuse (webhook_targets) is dead at once. An endpoint whose deliveries were given up
DISABLE_AFTER times in a row is disabled (its owner enables it again; a delivery in between
resets the count): a receiver gone for good stops costing attempts.

Signature (what receivers verify, README.md and docs/api.md): header
``StreamVault-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``, the
secret being the endpoint's ``whsec_…`` string as UTF-8; ``StreamVault-Event-Id`` is the same
on every attempt of one event (receivers deduplicate on it)."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import ssl
import time
from dataclasses import dataclass

import urllib3

from svcommon.jobqueue import Handler, Job
from svcommon.jobworker import Lease
from svcommon.media_crypto import SecretSealer
from svcommon.timeutil import iso
from svcommon.webhooks import TEST_EVENT

from . import repository as repo
from .extensions import db
from .webhook_targets import Target, TargetRefused, resolve

log = logging.getLogger("watermark.webhooks")
SIGNATURE_HEADER = "StreamVault-Signature"
SEALER_INFO = b"streamvault/webhook-secret/v1"
DISABLE_AFTER = 5                    # deliveries given up in a row before the endpoint is disabled
USER_AGENT = "StreamVault-Webhooks/1"


class DeliveryFailed(Exception):
    """The receiver did not take the event (retried with backoff)."""


class DeliveryRefused(DeliveryFailed):
    """The target is not allowed (address rules): never retried."""


@dataclass(frozen=True)
class Answer:
    status: int | None
    latency_ms: int
    error: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def sealer(cfg) -> SecretSealer:
    return SecretSealer(cfg["MEDIA_MASTER_KEY"], SEALER_INFO)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_body(event: dict) -> bytes:
    return json.dumps({"id": event["id"], "type": event["type"], "created": iso(event["created_at"]),
                       "data": event["data"]}, separators=(",", ":"), sort_keys=True).encode()


def post(target: Target, body: bytes, headers: dict, timeout: float) -> Answer:
    """POST to the checked address (the host only names it: Host header, TLS server name and
    certificate check). No redirect followed, no retry here, the response body never read."""
    kwargs = {}
    if target.scheme == "https":
        kwargs = dict(server_hostname=target.host, assert_hostname=target.host,
                      ssl_context=ssl.create_default_context(), cert_reqs="CERT_REQUIRED")
    pool_class = urllib3.HTTPSConnectionPool if target.scheme == "https" else urllib3.HTTPConnectionPool
    pool = pool_class(target.address, target.port, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                      retries=False, maxsize=1, **kwargs)
    started = time.monotonic()
    try:
        resp = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header},
                            redirect=False, retries=False, preload_content=False, assert_same_host=False)
        resp.close()                # the body is the receiver's business: never read, never buffered
        status, error = resp.status, "" if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib3.exceptions.HTTPError as exc:
        status, error = None, _reason(exc)
    finally:
        pool.close()
    return Answer(status, int((time.monotonic() - started) * 1000), error)


def _reason(exc: Exception) -> str:
    inner = getattr(exc, "reason", None) or exc
    text = str(inner).splitlines()[0] if str(inner).strip() else type(inner).__name__
    return f"{type(inner).__name__}: {text}"[:300]


def deliver(app, job: Job, lease: Lease) -> None:
    cfg = app.config
    with db.standalone() as conn:
        endpoint = repo.endpoint(conn, job.payload["endpoint_id"])
        event = repo.webhook_event(conn, job.payload["event_id"])
        conn.rollback()
    if endpoint is None or event is None:
        return                      # deleted (or the event pruned) since: nothing to send
    if not endpoint.enabled and event["type"] != TEST_EVENT:
        return                      # disabled by its owner or after repeated failures
    body = event_body(event)
    try:
        target = resolve(endpoint.url, bool(cfg["WEBHOOK_ALLOW_PRIVATE_TARGETS"]))
    except TargetRefused as exc:
        _record(job, endpoint.id, event, "refused", Answer(None, 0, str(exc)))
        raise DeliveryRefused(str(exc)) from None
    secret = sealer(cfg).open(endpoint.secret_enc, endpoint.id).decode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               SIGNATURE_HEADER: sign(secret, int(time.time()), body),
               "StreamVault-Event-Id": event["id"], "StreamVault-Event-Type": event["type"]}
    answer = post(target, body, headers, float(cfg["WEBHOOK_TIMEOUT_SECONDS"]))
    _record(job, endpoint.id, event, "delivered" if answer.delivered else "failed", answer)
    log.info("webhook delivery", extra={"endpoint": endpoint.id, "event": event["id"], "status": answer.status,
                                        "ms": answer.latency_ms, "attempt": job.attempts})
    if not answer.delivered:
        raise DeliveryFailed(answer.error)


def _record(job: Job, endpoint_id: str, event: dict, outcome: str, answer: Answer) -> None:
    with db.standalone() as conn:
        repo.record_attempt(conn, endpoint_id, event, job.attempts, outcome, answer.status, answer.latency_ms,
                            answer.error)
        conn.commit()


def _on_dead(conn, job: Job, exc: BaseException | None) -> None:
    reason = f"{DISABLE_AFTER} deliveries in a row were given up; last: {exc or 'the worker stopped'}"
    if repo.delivery_given_up(conn, job.payload["endpoint_id"], DISABLE_AFTER, reason):
        log.warning("webhook endpoint disabled", extra={"endpoint": job.payload["endpoint_id"]})


DELIVERY = Handler(run=deliver, permanent=(DeliveryRefused,), on_dead=_on_dead)
