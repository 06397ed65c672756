"""Secrets in URL paths never reach a log: a one-time password reset token and a playback
session's media token are redacted in the gateway's access log (nginx) and by svcommon.logs
(every service's access line and stored security events), and every route that takes a
``<token>`` is covered."""
from __future__ import annotations

import importlib
import json
import re
import time
import uuid

import requests

from stack.layout import SERVICES
from tests import ingest_helpers as h


def test_every_route_with_a_token_is_redacted(service_config):
    """A new route with a secret in its path must be added to svcommon.logs (and the
    gateway's map): this fails until it is."""
    from svcommon.logs import loggable_path
    secret = "SECRETsecretSECRETsecret0123456789_-AB"
    found = []
    for _, package, _ in SERVICES.values():
        app = importlib.import_module(package).create_app({**service_config, "LOG_LEVEL": "WARNING"})
        for rule in app.url_map.iter_rules():
            if "token" not in rule.arguments:
                continue
            path = re.sub(r"<(?:[^>]*:)?(\w+)>", lambda m: secret if m.group(1) == "token" else "a" * 32, rule.rule)
            found.append(rule.rule)
            assert secret not in loggable_path(path), rule.rule
    assert {"/auth/reset/<token>", "/api/stream/m/<sid>/<token>/manifest.mpd"} <= set(found)


def _gateway_lines(live_stack, rids: set[str]) -> list[dict]:
    """The gateway's access-log lines of these requests (its log is buffered: wait for them)."""
    log = live_stack["stack"].var / "nginx" / "logs" / "access.log"
    deadline = time.monotonic() + 15
    while True:
        lines = [json.loads(line) for line in log.read_text().splitlines() if any(r in line for r in rids)]
        if {line["request_id"] for line in lines} >= rids or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_gateway_access_log_redacts_secret_path_segments(live_stack):
    gw = live_stack["url"]
    admin = requests.post(f"{gw}/api/auth/login", timeout=10, json={
        "username": "admin", "password": live_stack["env"]["ADMIN_PASSWORD"]}).json()["access_token"]
    user = requests.post(f"{gw}/api/auth/register", timeout=10, json={
        "username": f"lr_{uuid.uuid4().hex[:8]}", "email": f"lr_{uuid.uuid4().hex[:8]}@e.test",
        "password": "redaction test password"}).json()["user"]
    url = requests.post(f"{gw}/api/admin/users/{user['id']}/reset-link", timeout=10,
                        headers={"Authorization": f"Bearer {admin}"}).json()["url"]
    token = url.rsplit("/", 1)[1]
    media_token, sid = uuid.uuid4().hex + "MEDIATOKEN", uuid.uuid4().hex
    asked = {f"/auth/reset/{token}": "/auth/reset/-",
             f"/api/stream/m/{sid}/{media_token}/manifest.mpd": f"/api/stream/m/{sid}/-/manifest.mpd",
             f"/api/stream/m/{sid}/{media_token}/720p/init.mp4": f"/api/stream/m/{sid}/-/720p/init.mp4"}
    rids = {}
    for path, shown in asked.items():
        rid = uuid.uuid4().hex
        r = requests.get(gw + path, headers={"X-Request-ID": rid}, allow_redirects=False, timeout=10)
        assert r.status_code in (200, 404), (path, r.status_code)
        rids[rid] = shown
    lines = _gateway_lines(live_stack, set(rids))
    assert {line["request_id"]: line["uri"] for line in lines} == rids
    text = (live_stack["stack"].var / "nginx" / "logs" / "access.log").read_text()
    assert token not in text and media_token not in text
    # The wrong media token is a security event; its stored path is redacted too.
    paths = [r["path"] for r in h.db_rows(live_stack["env"], "SELECT path FROM security_events WHERE "
                                           "kind = 'bad_media_url' AND path LIKE %s", (f"/api/stream/m/{sid}/%",))]
    assert paths and all(p.startswith(f"/api/stream/m/{sid}/-/") for p in paths)
