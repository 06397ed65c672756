"""HTTPS at the gateway (issue #11, item 15): the suite is served over TLS 1.2+ with a
certificate the clients verify (tests/compose/run.sh makes a self-signed one), plain HTTP
only redirects, HSTS is sent, cookies are Secure. DPoP proofs with an https `htu` are
checked in check_15_media (playback through the gateway)."""
from __future__ import annotations

import os
import socket
import ssl
import warnings
from urllib.parse import urlsplit

import requests

from client import Gateway

HTTP_URL = os.environ.get("SV_GATEWAY_HTTP_URL", "http://127.0.0.1:8080")


def test_served_over_https_with_hsts(gateway: Gateway):
    assert gateway.base.startswith("https://")
    r = gateway.get("/auth/login")            # verified against the CA bundle run.sh exports
    assert r.status_code == 200
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_plain_http_redirects_to_https(gateway: Gateway):
    r = requests.post(f"{HTTP_URL}/api/auth/login?x=1", json={}, allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"] == f"{gateway.base}/api/auth/login?x=1"
    assert requests.get(f"{HTTP_URL}/gateway/healthz", timeout=10).status_code == 200   # healthcheck


def _handshake(gateway: Gateway, version: ssl.TLSVersion) -> str:
    u = urlsplit(gateway.base)
    ctx = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    with warnings.catch_warnings():      # asking for TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection((u.hostname, u.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=u.hostname) as tls:
            return tls.version()


def test_tls_1_2_and_up_only(gateway: Gateway):
    assert _handshake(gateway, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(gateway, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    try:
        _handshake(gateway, ssl.TLSVersion.TLSv1_1)
    except (ssl.SSLError, OSError):
        pass
    else:
        raise AssertionError("TLS 1.1 was accepted")


def test_cookies_are_secure(gateway: Gateway, user):
    http = requests.Session()
    page = http.get(f"{gateway.base}/auth/login", timeout=10)
    assert "secure" in page.headers["Set-Cookie"].lower()          # sv_csrf
    r = http.post(f"{gateway.base}/auth/login", timeout=10, allow_redirects=False,
                  data={"username": user.username, "password": user.password, "redirect": "/",
                        "csrf_token": http.cookies.get("sv_csrf")})
    assert r.status_code == 303, r.text[:300]
    cookies = r.raw.headers.getlist("Set-Cookie")
    assert {c.split("=", 1)[0] for c in cookies} >= {"sv_access", "sv_refresh", "sv_csrf"}
    assert all("; secure" in c.lower() for c in cookies), cookies
