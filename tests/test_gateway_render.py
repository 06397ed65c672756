"""The gateway's own answers and settings, rendered from gateway/nginx.conf.template by the same
code as `make up`: a 503 the gateway makes itself (a service down) carries the server's headers
(request id, nosniff, HSTS under TLS) and is never cached; limits read from the environment take
ASCII digits only. The gateways here have every upstream refused, so no service is needed."""
from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
import requests

from stack import components
from stack.layout import Stack
from tests.support.tls import self_signed_certificate

PLAIN_SHIFT, TLS_SHIFT, REDIRECT_SHIFT = 7, 8, 9      # beside the live gateway's port (test_gateway_tls: 5, 6)


@dataclass(frozen=True)
class _RefusedUpstreams(Stack):
    """The test stack with every service on a port that refuses connections."""
    refused_port: int = 0

    def port(self, service: str) -> int:
        return self.refused_port


@pytest.fixture(scope="module")
def down_gateways(infra, tmp_path_factory):
    base = infra["stack"]
    with socket.socket() as refused:                  # bound, never listening: connect() is refused
        refused.bind(("127.0.0.1", 0))
        stack = _RefusedUpstreams(base.name, base.offset, refused.getsockname()[1])
        port, tls_port = stack.gateway_port + PLAIN_SHIFT, stack.gateway_port + TLS_SHIFT
        redirect_port = stack.gateway_port + REDIRECT_SHIFT
        cert, key = self_signed_certificate(tmp_path_factory.mktemp("down-tls"))
        components.nginx_prepare(stack, infra["env"], folder="nginx-down", port=port)
        components.nginx_prepare(stack, infra["env"], tls=(str(cert), str(key)), http_redirect_port=redirect_port,
                                 folder="nginx-down-tls", port=tls_port)
        procs = infra["procs"]
        plain = procs.start("gateway-down", components.nginx_command(stack, "nginx-down"))
        tls = procs.start("gateway-down-tls", components.nginx_command(stack, "nginx-down-tls"))
        try:
            components.wait_http(f"http://127.0.0.1:{port}/gateway/healthz", plain)
            components.wait_http(f"http://127.0.0.1:{redirect_port}/gateway/healthz", tls)
            yield {"plain": f"http://127.0.0.1:{port}", "tls": f"https://127.0.0.1:{tls_port}", "ca": str(cert)}
        finally:
            procs.stop("gateway-down")
            procs.stop("gateway-down-tls")


@pytest.mark.parametrize("path, kind", [
    ("/api/videos/mine", "application/json"),
    ("/media/0123/abc/v0/seg-1.m4s", "application/json"),   # the cached location: a CDN may sit in front
    ("/upload/", "text/html"),
])
def test_the_gateways_own_503_carries_the_server_headers_and_is_never_cached(down_gateways, path, kind):
    r = requests.get(down_gateways["plain"] + path, headers={"Accept": "text/html", "X-Request-ID": "trace-503-me"},
                     timeout=10)
    assert r.status_code == 503 and r.headers["Content-Type"].startswith(kind), (r.status_code, r.text[:200])
    assert r.headers["X-Request-ID"] == "trace-503-me"
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["Retry-After"] == "10" and r.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in r.headers          # plain HTTP: never


def test_the_gateways_own_503_keeps_hsts_under_tls(down_gateways):
    for path in ("/api/videos/mine", "/upload/"):
        r = requests.get(down_gateways["tls"] + path, verify=down_gateways["ca"], timeout=10)
        assert r.status_code == 503, path
        assert r.headers["Strict-Transport-Security"] == "max-age=63072000", path
        assert r.headers["X-Request-ID"], path


def test_limits_from_the_environment_take_ascii_digits_only():
    default = components.gateway_body_limits({})
    # "²".isdigit() and "١٢".isdigit() hold, yet int("²") raises: the default, not a traceback.
    for odd in ("²", "١٢", " 5", "5_000", "-1", ""):
        limits = components.gateway_body_limits({"BODY_MAX_BYTES": odd, "UPLOAD_MAX_BYTES": odd})
        assert limits == default, odd
    assert components.gateway_body_limits({"BODY_MAX_BYTES": "1234"})["BODY_MAX"] == "1234"
