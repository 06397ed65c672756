"""Phase 1 — what exists now, through the published gateway only: pages, accounts,
tokens, JWKS; internal endpoints stay internal."""
from __future__ import annotations

import json
import secrets
import time

import pytest

from client import Gateway, User
from svcompose import Compose


def test_gateway_health(gateway: Gateway):
    r = gateway.get("/gateway/healthz")
    assert r.status_code == 200 and r.text.strip() == "ok"
    assert r.headers.get("X-Request-ID")
    assert r.headers.get("X-Content-Type-Options") == "nosniff"


def test_login_page(gateway: Gateway):
    r = gateway.get("/auth/login?redirect=/upload/")
    assert r.status_code == 200, r.text[:500]
    assert "text/html" in r.headers["Content-Type"]
    assert "<form" in r.text.lower() and "password" in r.text.lower()


def test_register_login_profile(gateway: Gateway, user: User):
    r = gateway.login(user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"].lower() == "bearer" and body["refresh_token"]
    assert body["user"]["username"] == user.username
    r = gateway.profile(user)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == user.username and r.json()["email"] == user.email


def test_duplicate_register_is_409(gateway: Gateway, user: User):
    assert gateway.register(user).status_code == 409


def test_wrong_password_is_401(gateway: Gateway, user: User):
    r = gateway.post("/api/auth/login", json={"username": user.username, "password": "wrong-" + user.password})
    assert r.status_code == 401


def test_profile_needs_a_token(gateway: Gateway):
    assert gateway.get("/api/auth/profile").status_code == 401
    r = gateway.get("/api/auth/profile", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401


def test_jwks(gateway: Gateway, user: User):
    r = gateway.get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert keys and all("d" not in k for k in keys), "JWKS must hold public keys only"
    gateway.login(user)
    import jwt  # PyJWT: the token's kid is published and verifies against the JWKS
    header = jwt.get_unverified_header(user.access_token)
    key = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(user.access_token, jwt.PyJWK(key).key, algorithms=[header["alg"]],
                        audience="streamvault", issuer="streamvault-auth")
    assert claims["exp"] > claims["iat"]


@pytest.mark.parametrize("path", ["/metrics", "/objects", "/objects/x", "/objects?prefix="])
def test_internal_endpoints_not_public(gateway: Gateway, path: str):
    assert gateway.get(path).status_code == 404


def test_file_svc_not_routed(gateway: Gateway):
    # file-svc has no route through the gateway: its paths land on the viewer app (404),
    # never on file-svc, and its name is not resolvable from outside the backend network.
    r = gateway.get("/objects/anything", headers={"Host": "file-svc:4000"})
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/upload/vendor/tus.min.js", "/vendor/shaka-player.js"])
def test_front_end_packages_in_images(gateway: Gateway, path: str):
    """npm-installed front-end packages (the images' assets stage) are served."""
    r = gateway.get(path)
    assert r.status_code == 200, (path, r.status_code)
    assert "javascript" in r.headers["Content-Type"] and len(r.content) > 10_000


def test_viewer_pages(gateway: Gateway):
    r = gateway.get("/")
    assert r.status_code in (200, 302, 303), r.status_code
    r = gateway.get("/upload/")
    assert r.status_code in (302, 303) and "/auth/login" in r.headers["Location"]


def test_one_access_line_per_request(gateway: Gateway, compose: Compose):
    """Each request is logged once by the service (svcommon's JSON line with the request id
    the gateway forwarded), not a second time by gunicorn."""
    rids = [secrets.token_hex(8) for _ in range(2)]
    for rid in rids:
        r = gateway.get("/api/auth/profile", headers={"X-Request-ID": rid})
        assert r.status_code == 401 and r.headers["X-Request-ID"] == rid
    ids = [c["id"] for c in compose.containers("auth-svc")]
    deadline = time.monotonic() + 30
    while True:   # the second request's line written => the first request's lines all are
        out = "".join(Compose.logs(cid) for cid in ids)
        if rids[1] in out or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    # Access lines name the path (svcommon's, and gunicorn's when it had one); the refusal
    # itself is logged too (svcommon.errors), as every refused request is.
    records = [json.loads(line) for line in out.splitlines() if rids[0] in line]
    access = [r for r in records if "path" in r]
    assert len(access) == 1, records
    assert access[0]["status"] == 401 and access[0]["logger"] == "auth-svc.access"
