"""HTTPS at the gateway (issue #11, item 15), natively: the same template rendered with a
certificate serves TLS 1.2+ with HSTS, redirects plain HTTP, and the services behind it
see https (Secure cookies, DPoP `htu` on the https URL). The compose suite runs entirely
over HTTPS too (tests/compose/check_12_https.py)."""
from __future__ import annotations

import socket
import ssl
import warnings

import pytest
import requests

from stack import components
from tests.support.dpop import FINGERPRINT, DeviceKey
from tests.support.tls import self_signed_certificate
from tests.support.videos import register_user

TLS_PORT_SHIFT, HTTP_PORT_SHIFT = 5, 6          # beside the plain gateway's port


@pytest.fixture(scope="module")
def tls_gateway(live_stack, tmp_path_factory):
    """A second gateway in front of the live services, with a self-signed certificate."""
    stack, procs = live_stack["stack"], live_stack["procs"]
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    port, http_port = stack.gateway_port + TLS_PORT_SHIFT, stack.gateway_port + HTTP_PORT_SHIFT
    components.nginx_prepare(stack, live_stack["env"], tls=(str(cert), str(key)), http_redirect_port=http_port,
                             folder="nginx-tls", port=port)
    proc = procs.start("gateway-tls", components.nginx_command(stack, "nginx-tls"))
    base = f"https://127.0.0.1:{port}"
    components.wait_http(f"http://127.0.0.1:{http_port}/gateway/healthz", proc)
    yield {"url": base, "http": f"http://127.0.0.1:{http_port}", "ca": str(cert), "port": port}
    procs.stop("gateway-tls")


def test_https_with_hsts_and_http_redirected(tls_gateway):
    r = requests.get(f"{tls_gateway['url']}/auth/login", verify=tls_gateway["ca"], timeout=10)
    assert r.status_code == 200
    assert r.headers["Strict-Transport-Security"] == "max-age=63072000"
    r = requests.post(f"{tls_gateway['http']}/api/auth/login?a=1", json={}, allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"] == f"{tls_gateway['url']}/api/auth/login?a=1"


@pytest.mark.parametrize("version, accepted", [(ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True),
                                               (ssl.TLSVersion.TLSv1_3, True)])
def test_tls_versions(tls_gateway, version, accepted):
    ctx = ssl.create_default_context(cafile=tls_gateway["ca"])
    with warnings.catch_warnings():      # asking for TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", tls_gateway["port"]), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() == version.name.replace("_", ".")
    except (ssl.SSLError, OSError):
        assert not accepted, f"{version.name} refused"
    else:
        assert accepted, f"{version.name} accepted"


def test_cookies_are_secure_over_https(tls_gateway, live_stack):
    user = register_user(live_stack["url"], "tls")
    http, ca = requests.Session(), tls_gateway["ca"]
    page = http.get(f"{tls_gateway['url']}/auth/login", verify=ca, timeout=10)
    assert "; secure" in page.headers["Set-Cookie"].lower()
    r = http.post(f"{tls_gateway['url']}/auth/login", allow_redirects=False, verify=ca, timeout=10,
                  data={"username": user["username"], "password": user["password"], "redirect": "/",
                        "csrf_token": http.cookies.get("sv_csrf")})
    assert r.status_code == 303, r.text[:300]
    cookies = r.raw.headers.getlist("Set-Cookie")
    assert {c.split("=", 1)[0] for c in cookies} >= {"sv_access", "sv_refresh", "sv_csrf"}
    assert all("; secure" in c.lower() for c in cookies), cookies


def test_dpop_htu_is_the_https_url(tls_gateway, live_stack):
    base, ca = tls_gateway["url"], tls_gateway["ca"]
    user = register_user(live_stack["url"], "tlsd")
    key = DeviceKey()
    r = requests.post(f"{base}/api/auth/device-token", json={"fingerprint": FINGERPRINT}, verify=ca, timeout=10,
                      headers={"Authorization": f"Bearer {user['access_token']}",
                               "DPoP": key.proof("POST", f"{base}/api/auth/device-token")})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    ok = requests.get(f"{base}/api/auth/profile", verify=ca, timeout=10, headers={
        "Authorization": f"DPoP {token}", "DPoP": key.proof("GET", f"{base}/api/auth/profile", token)})
    assert ok.status_code == 200, ok.text
    plain = base.replace("https://", "http://")            # a proof for the http URL is refused
    bad = requests.get(f"{base}/api/auth/profile", verify=ca, timeout=10, headers={
        "Authorization": f"DPoP {token}", "DPoP": key.proof("GET", f"{plain}/api/auth/profile", token)})
    assert bad.status_code == 401
