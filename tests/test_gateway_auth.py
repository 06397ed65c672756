"""End to end through the nginx gateway with every service running under gunicorn."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.dpop import FINGERPRINT, DeviceKey


@pytest.fixture
def gw(live_stack):
    return live_stack["url"]


def _register_and_login(gw):
    name = "gw_" + uuid.uuid4().hex[:8]
    r = requests.post(f"{gw}/api/auth/register", json={"username": name, "email": f"{name}@e.test",
                                                       "password": "gateway password 1"})
    assert r.status_code == 201, r.text
    r = requests.post(f"{gw}/api/auth/login", json={"username": name, "password": "gateway password 1"})
    assert r.status_code == 200
    return r.json()


def test_login_page_and_api_through_gateway(gw):
    assert requests.get(f"{gw}/auth/login").status_code == 200
    pair = _register_and_login(gw)
    prof = requests.get(f"{gw}/api/auth/profile", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert prof.status_code == 200 and prof.json()["username"] == pair["user"]["username"]


def test_dpop_htu_is_the_public_url(gw):
    """Behind the gateway the service must see the public URL, or every browser proof fails."""
    pair = _register_and_login(gw)
    key = DeviceKey()
    r = requests.post(f"{gw}/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                      headers={"Authorization": f"Bearer {pair['access_token']}",
                               "DPoP": key.proof("POST", f"{gw}/api/auth/device-token")})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    ok = requests.get(f"{gw}/api/auth/profile", headers={"Authorization": f"DPoP {token}",
                                                         "DPoP": key.proof("GET", f"{gw}/api/auth/profile", token)})
    assert ok.status_code == 200
    internal = requests.get(f"{gw}/api/auth/profile", headers={
        "Authorization": f"DPoP {token}", "DPoP": key.proof("GET", "http://127.0.0.1:8000/api/auth/profile", token)})
    assert internal.status_code == 401


@pytest.mark.parametrize("path", ["/metrics", "/objects", "/objects/originals/x", "/objects?prefix=",
                                  "/api/auth/service-token"])
def test_internal_endpoints_not_public(gw, path):
    assert requests.get(f"{gw}{path}").status_code == 404
    assert requests.post(f"{gw}{path}", json={"service": "upload", "secret": "x" * 32}).status_code == 404


def test_request_id_propagates(gw, live_stack):
    r = requests.get(f"{gw}/auth/login", headers={"X-Request-ID": "trace-me-123"})
    assert r.headers["X-Request-ID"] == "trace-me-123"
    r = requests.get(f"{gw}/auth/login", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["X-Request-ID"] != "bad id with spaces" and len(r.headers["X-Request-ID"]) >= 16


def test_spoofed_forwarded_for_is_ignored(gw):
    """The gateway replaces X-Forwarded-For, so a client can't dodge the per-IP throttle."""
    for i in range(3):
        requests.post(f"{gw}/api/auth/login", json={"username": f"ghost{i}", "password": "x" * 12},
                      headers={"X-Forwarded-For": f"1.2.3.{i}"})
    # auth-svc saw 127.0.0.1 each time: check via the security record
    from svcommon.db import query
    import mysql.connector
    from stack.layout import TEST
    from stack.secrets import read_env_file
    pw = read_env_file(TEST.var / "secrets.env")["DB_PASSWORD"]
    conn = mysql.connector.connect(host="127.0.0.1", port=TEST.mariadb_port, user="streamvault", password=pw,
                                   database="streamvault")
    try:
        rows = query(conn, "SELECT ip FROM security_events WHERE detail LIKE %s", ("%ghost%",))
    finally:
        conn.close()
    assert rows and {r["ip"] for r in rows} == {"127.0.0.1"}


@pytest.mark.parametrize("service", ["auth", "upload", "file", "streaming", "watermark"])
def test_every_service_has_health_endpoints(live_stack, service):
    base = live_stack["stack"].url(service)
    assert requests.get(f"{base}/healthz").json()["status"] == "ok"
    ready = requests.get(f"{base}/readyz")
    assert ready.status_code == 200, ready.text
    metrics = requests.get(f"{base}/metrics")
    assert metrics.status_code == 200 and "sv_http_requests_total" in metrics.text
