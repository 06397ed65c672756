"""Webhooks on the real stack: an endpoint registered through the gateway gets `video.ready`
when the real worker publishes a video and `video.deleted` when its owner deletes it, signed
so that the README's verification snippet (run as written) accepts it and refuses it with a
wrong secret; a receiver answering 500 gets the same event again on the queue's retry; the
attempts are listed by the API, redelivered on request, invisible to other accounts; loopback
and private targets are refused at registration and at delivery without the operator's
allowance; video.failed and leak.traced from their own code paths; the page in Chromium with axe.

Deliveries run in this process through the real queue (svcommon.jobworker.run_once, kind
'webhook.deliver') with a watermark-svc app whose allowance for private targets is on: the
receiver is a small threaded HTTP server on 127.0.0.1."""
from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from svcommon import jobworker, webhooks
from tests.support.browser import chromium_page
from tests.support.media import ONE_RUNG
from tests.support.page_checks import asset_log, check_page, login
from tests.support.videos import make_ready_video, queue_video, register_user, run_video, sql

CLIP_SECONDS = 4
CLIP_SIZE = ONE_RUNG
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_verifier():
    """The README's verify_signature, executed exactly as a reader would paste it."""
    text = README.read_text()
    block = re.search(r"```python\n(.*?def verify_signature.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(block, scope)          # noqa: S102 - our own README's snippet
    return scope["verify_signature"]


class Receiver:
    """Records every POST (headers, raw body); answers the scripted statuses, then 200."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(({**headers, ":path": self.path}, body))
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sv?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, url: str | None = None) -> list[dict]:
        """The bodies received (only those sent to ``url``, an endpoint's)."""
        path = url and url.split("/", 3)[3]
        return [json.loads(body) for headers, body in self.requests if not path or headers[":path"] == "/" + path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def hook_app(live_stack, service_config):
    """The worker side with the operator's allowance (the receiver is on loopback)."""
    from watermark_svc import create_app
    return create_app({**service_config, "WEBHOOK_ALLOW_PRIVATE_TARGETS": True, "WORKER_LEASE_SECONDS": 5,
                       "WORKER_RETRY_BASE_SECONDS": 60})


@pytest.fixture(scope="module")
def strict_app(live_stack, service_config):
    """watermark-svc as an operator runs it by default: no private targets."""
    from watermark_svc import create_app
    return create_app({**service_config, "WEBHOOK_ALLOW_PRIVATE_TARGETS": False, "WORKER_LEASE_SECONDS": 5})


@pytest.fixture(scope="module")
def hooker(live_stack, mdb):
    user = register_user(live_stack["url"], "hook")
    yield user
    sql(mdb, "DELETE FROM jobs WHERE kind = %s AND subject IN (SELECT id FROM webhook_endpoints WHERE owner_id = %s)",
        (webhooks.DELIVER, user["id"]))
    sql(mdb, "DELETE FROM webhook_endpoints WHERE owner_id = %s", (user["id"],))


def bearer(user: dict) -> dict:
    return {"Authorization": f"Bearer {user['access_token']}"}


def register(gw: str, user: dict, url: str, events=("video.ready", "video.deleted")) -> dict:
    r = requests.post(f"{gw}/api/webhooks", json={"url": url, "events": list(events), "description": "test"},
                      headers=bearer(user), timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def deliver(app, endpoint_id: str) -> int:
    """Run the endpoint's due delivery jobs (real queue, real handler); how many ran."""
    ran = 0
    while True:
        with app.app_context():
            from watermark_svc.extensions import db
            from watermark_svc.jobs import handlers
            due = sql_due(app, endpoint_id)
            if not due:
                return ran
            assert jobworker.run_once(app, db, handlers(), "hook-test", kinds=(webhooks.DELIVER,))
        ran += 1


def sql_due(app, endpoint_id: str) -> int:
    from watermark_svc.extensions import db
    with db.standalone() as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM jobs WHERE kind = %s AND subject = %s AND status = 'queued' "
                    "AND run_after <= UTC_TIMESTAMP(6)", (webhooks.DELIVER, endpoint_id))
        n = cur.fetchone()[0]
        cur.close()
        conn.rollback()
    return n


def attempts(gw: str, user: dict, endpoint_id: str) -> list[dict]:
    r = requests.get(f"{gw}/api/webhooks/{endpoint_id}", headers=bearer(user), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["attempts"]


def test_ready_and_deleted_are_signed_deliveries(live_stack, hooker, receiver, hook_app, worker_app, mdb, stores,
                                                 clip):
    gw = live_stack["url"]
    verify = readme_verifier()
    ep = register(gw, hooker, receiver.url)
    assert ep["secret"].startswith("whsec_") and ep["events"] == ["video.deleted", "video.ready"]
    sealed = sql(mdb, "SELECT secret_enc FROM webhook_endpoints WHERE id = %s", (ep["id"],), one=True)["secret_enc"]
    assert ep["secret"].encode() not in bytes(sealed)            # stored sealed, never in clear
    assert "secret" not in requests.get(f"{gw}/api/webhooks/{ep['id']}", headers=bearer(hooker)).json()

    vid = make_ready_video(worker_app, mdb, stores, hooker["id"], clip, title="Hooked clip")
    assert deliver(hook_app, ep["id"]) == 1
    (headers, body), = receiver.requests
    event = json.loads(body)
    assert event["type"] == "video.ready" and event["data"]["video_id"] == vid
    assert event["data"]["title"] == "Hooked clip" and event["data"]["owner_id"] == hooker["id"]
    assert headers["streamvault-event-id"] == event["id"] and headers["streamvault-event-type"] == "video.ready"
    assert headers["content-type"] == "application/json"
    signature = headers["streamvault-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert verify(ep["secret"], signature, body)
    assert not verify("whsec_" + "A" * 43, signature, body)                   # a wrong secret
    assert not verify(ep["secret"], signature, body.replace(b"Hooked", b"Hacked"))   # a changed body
    assert not verify(ep["secret"], "t=1,v1=" + signature.split("v1=")[1], body)   # another time

    r = requests.delete(f"{gw}/api/videos/{vid}", headers=bearer(hooker), timeout=30)
    assert r.status_code == 204, r.text
    assert deliver(hook_app, ep["id"]) == 1
    headers, body = receiver.requests[1]
    deleted = json.loads(body)
    assert deleted["type"] == "video.deleted" and deleted["data"]["video_id"] == vid
    assert deleted["data"]["status"] == "deleted" and verify(ep["secret"], headers["streamvault-signature"], body)

    listed = attempts(gw, hooker, ep["id"])
    assert [(a["event_type"], a["outcome"], a["status_code"]) for a in listed] == [
        ("video.deleted", "delivered", 200), ("video.ready", "delivered", 200)]
    assert all(a["latency_ms"] is not None and a["attempt"] == 1 for a in listed)

    # Another account sees none of it.
    other = register_user(gw, "nosy")
    assert requests.get(f"{gw}/api/webhooks", headers=bearer(other)).json() == {"items": []}
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/test"), ("POST", "/rotate-secret")):
        r = requests.request(method, f"{gw}/api/webhooks/{ep['id']}{path}", headers=bearer(other), timeout=10)
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), (method, path, r.text)
    r = requests.post(f"{gw}/api/webhooks", json={"url": receiver.url, "events": ["video.ready"], "all_videos": True},
                      headers=bearer(other), timeout=10)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    assert sql(mdb, "SELECT COUNT(*) AS n FROM webhook_endpoints WHERE owner_id = %s", (other["id"],), one=True)["n"] == 0


def test_failed_delivery_is_retried_then_redelivered(live_stack, hooker, receiver, hook_app, mdb):
    gw = live_stack["url"]
    ep = register(gw, hooker, receiver.url, events=("video.failed",))
    receiver.requests.clear()
    receiver.script[:] = [500]
    r = requests.post(f"{gw}/api/webhooks/{ep['id']}/test", headers=bearer(hooker), timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert deliver(hook_app, ep["id"]) == 1
    job = sql(mdb, "SELECT status, attempts, last_error, run_after > UTC_TIMESTAMP(6) AS later FROM jobs "
                   "WHERE id = %s", (job_id,), one=True)
    assert job == {"status": "queued", "attempts": 1, "last_error": "HTTP 500", "later": 1}   # backing off
    assert deliver(hook_app, ep["id"]) == 0                                 # not before its time
    sql(mdb, "UPDATE jobs SET run_after = UTC_TIMESTAMP(6) WHERE id = %s", (job_id,))
    assert deliver(hook_app, ep["id"]) == 1
    assert sql(mdb, "SELECT status FROM jobs WHERE id = %s", (job_id,), one=True)["status"] == "done"
    first, second = receiver.events()
    assert first == second and first["type"] == webhooks.TEST_EVENT        # the same event, same id
    listed = attempts(gw, hooker, ep["id"])
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in listed] == [(2, "delivered", 200),
                                                                               (1, "failed", 500)]
    r = requests.post(f"{gw}/api/webhooks/{ep['id']}/attempts/{listed[1]['id']}/redeliver", headers=bearer(hooker),
                      timeout=10)
    assert r.status_code == 202, r.text
    assert deliver(hook_app, ep["id"]) == 1
    assert receiver.events()[2]["id"] == first["id"]

    # A new secret signs from now on; the old one no longer verifies.
    verify = readme_verifier()
    secret = requests.post(f"{gw}/api/webhooks/{ep['id']}/rotate-secret", headers=bearer(hooker)).json()["secret"]
    assert secret != ep["secret"]
    requests.post(f"{gw}/api/webhooks/{ep['id']}/test", headers=bearer(hooker), timeout=10)
    deliver(hook_app, ep["id"])
    headers, body = receiver.requests[-1]
    assert verify(secret, headers["streamvault-signature"], body)
    assert not verify(ep["secret"], headers["streamvault-signature"], body)


def test_failed_and_leak_traced_events(live_stack, hooker, receiver, hook_app, worker_app, mdb, stores):
    """A video the real worker cannot process sends video.failed (once); a trace that matched
    one of the owner's videos sends leak.traced (through the runner's own emit)."""
    from watermark_svc.extensions import db
    from watermark_svc.forensics.runner import _leak_traced
    gw = live_stack["url"]
    ep = register(gw, hooker, receiver.url + "&ep=failed", events=("video.failed", "leak.traced"))
    receiver.requests.clear()
    vid = queue_video(mdb, stores, hooker["id"], b"not a video at all " * 500, title="Broken clip")
    run_video(worker_app, mdb, vid)
    assert sql(mdb, "SELECT status FROM videos WHERE id = %s", (vid,), one=True)["status"] == "failed"
    det_id = uuid.uuid4().hex
    with hook_app.app_context(), db.standalone() as conn:
        _leak_traced(conn, det_id, {"video_id": vid, "method_used": "metadata", "match": {"session_id": "s"},
                                    "false_accusation_probability": 1e-12})
        conn.commit()
    deliver(hook_app, ep["id"])          # (an endpoint of an earlier test subscribed to video.failed too)
    failed, leak = sorted(receiver.events(ep["url"]), key=lambda e: e["type"], reverse=True)   # once each
    assert failed["type"] == "video.failed" and failed["data"]["video_id"] == vid
    assert failed["data"]["status"] == "failed" and failed["data"]["status_message"]
    assert leak["type"] == "leak.traced" and leak["data"] == {
        "detection_id": det_id, "video_id": vid, "method": "metadata", "false_accusation_probability": 1e-12,
        "report_url": f"/admin/forensics/detections/{det_id}/report"}
    sql(mdb, "DELETE FROM videos WHERE id = %s", (vid,))


def test_endpoint_limit_holds_against_registrations_at_the_same_instant(live_stack, receiver, mdb):
    """An account's endpoints are capped (MAX_ENDPOINTS_PER_USER, 10); 6 registrations at the
    same instant from an account that has 8 give 2 endpoints and 4 clean 409s. The count was
    read without a lock, so registrations at once all saw 8 (checked on the old code: 12 made)."""
    from watermark_svc.webhooks_api import MAX_ENDPOINTS_PER_USER
    gw, user = live_stack["url"], register_user(live_stack["url"], "hookrace")
    try:
        for _ in range(MAX_ENDPOINTS_PER_USER - 2):
            register(gw, user, receiver.url)
        start = threading.Barrier(6)

        def create(i: int) -> requests.Response:
            start.wait()
            return requests.post(f"{gw}/api/webhooks", json={"url": receiver.url, "events": ["video.ready"],
                                                             "description": f"race {i}"},
                                 headers=bearer(user), timeout=30)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(create, range(6)))
        codes = sorted(r.status_code for r in answers)
        made = sql(mdb, "SELECT COUNT(*) AS n FROM webhook_endpoints WHERE owner_id = %s", (user["id"],), one=True)["n"]
        assert codes == [201] * 2 + [409] * 4 and made == MAX_ENDPOINTS_PER_USER, (codes, made)
        assert all(r.json()["code"] == "too_many_webhooks" for r in answers if r.status_code == 409)
    finally:
        sql(mdb, "DELETE FROM webhook_endpoints WHERE owner_id = %s", (user["id"],))


def test_private_targets_refused_without_the_allowance(live_stack, hooker, receiver, strict_app, mdb):
    from watermark_svc.webhook_targets import TargetRefused, public_address, resolve
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "ff02::1"):
        assert not public_address(address), address
    assert public_address("93.184.216.34") and public_address("2606:2800:220:1::1")
    for url in ("ftp://example.com/", "http://user:pw@example.com/", "http:///nohost", "https://example.com/#x",
                "http://exa mple.com/"):
        with pytest.raises(TargetRefused):
            resolve(url, allow_private=True)

    gw = live_stack["url"]
    before = sql(mdb, "SELECT COUNT(*) AS n FROM webhook_endpoints", one=True)["n"]
    client = strict_app.test_client()
    for url in (receiver.url, "http://localhost:9/", "http://[::1]/", "http://169.254.169.254/latest/meta-data"):
        r = client.post("/api/webhooks", json={"url": url, "events": ["video.ready"]}, headers=bearer(hooker))
        assert (r.status_code, r.json["code"]) == (422, "webhook_url_refused"), (url, r.json)
        assert "url" in r.json["fields"]
    r = requests.post(f"{gw}/api/webhooks", json={"url": "gopher://x/", "events": ["video.nope"]},
                      headers=bearer(hooker), timeout=10)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_input") and set(r.json()["fields"]) == {"events"}
    assert sql(mdb, "SELECT COUNT(*) AS n FROM webhook_endpoints", one=True)["n"] == before    # nothing written

    # Registered while allowed (the test stack), delivered by a worker without the allowance:
    # refused before any connection, not retried, and the endpoint's fifth give-up disables it.
    ep = register(gw, hooker, receiver.url)
    receiver.requests.clear()
    sql(mdb, "UPDATE webhook_endpoints SET dead_streak = 4 WHERE id = %s", (ep["id"],))
    job_id = requests.post(f"{gw}/api/webhooks/{ep['id']}/test", headers=bearer(hooker)).json()["job_id"]
    assert deliver(strict_app, ep["id"]) == 1
    assert receiver.requests == []
    assert sql(mdb, "SELECT status FROM jobs WHERE id = %s", (job_id,), one=True)["status"] == "dead"
    (att,) = attempts(gw, hooker, ep["id"])
    assert att["outcome"] == "refused" and "127.0.0.1" in att["error"] and att["status_code"] is None
    state = requests.get(f"{gw}/api/webhooks/{ep['id']}", headers=bearer(hooker)).json()
    assert state["enabled"] is False and "5 deliveries in a row" in state["disabled_reason"]
    r = requests.patch(f"{gw}/api/webhooks/{ep['id']}", json={"enabled": True}, headers=bearer(hooker), timeout=10)
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["disabled_reason"] == ""
    r = requests.delete(f"{gw}/api/webhooks/{ep['id']}", headers=bearer(hooker), timeout=10)
    assert r.status_code == 204
    assert sql(mdb, "SELECT COUNT(*) AS n FROM webhook_attempts WHERE endpoint_id = %s", (ep["id"],), one=True)["n"] == 0


@pytest.mark.browser
def test_webhooks_page(live_stack, hooker, receiver, hook_app):
    gw = live_stack["url"]
    ep = register(gw, hooker, receiver.url + "&page=" + uuid.uuid4().hex[:6], events=("video.ready",))
    requests.post(f"{gw}/api/webhooks/{ep['id']}/test", headers=bearer(hooker), timeout=10)
    deliver(hook_app, ep["id"])
    with chromium_page() as page, asset_log(page) as failed:
        login(page, gw, hooker, "/upload/")
        page.click("header nav a[href='/webhooks']")          # an uploader finds it in the header
        page.wait_for_url(f"{gw}/webhooks")
        assert page.get_attribute("header nav a[href='/webhooks']", "aria-current") == "page"
        card = page.locator(f"li[data-id='{ep['id']}']")
        card.wait_for()
        assert ep["url"] in card.inner_text()
        assert card.locator("tbody tr").count() == 1 and "delivered (200)" in card.inner_text()
        check_page(page, "webhooks", ("#wh-url", "#new-endpoint button[type=submit]",
                                      f"li[data-id='{ep['id']}'] [data-action=test]"))
        card.locator("[data-action=test]").click()
        page.wait_for_function(f"() => document.querySelector(\"li[data-id='{ep['id']}'] .ep-result\")"
                               ".textContent.startsWith('Test event queued')")
        # A refused registration says why, next to the form.
        page.fill("#wh-url", "ftp://example.com/")
        page.click("#new-endpoint button[type=submit]")
        page.wait_for_function("() => document.getElementById('new-result').textContent.startsWith('Not added')")
        assert "https://" in page.inner_text("#new-result")
        # A new endpoint: its secret is shown once.
        page.fill("#wh-url", receiver.url + "&new=1")
        page.click("#new-endpoint button[type=submit]")
        page.wait_for_selector("#secret-box:not([hidden])")
        assert page.input_value("#secret-value").startswith("whsec_")
        page.click("#copy-secret")     # copied, or (no clipboard in this browser) selected for Ctrl+C
        page.wait_for_function("() => document.getElementById('copy-secret').textContent !== 'Copy'")
        check_page(page, "webhooks-secret", ("#secret-box",))
        assert not failed, failed
