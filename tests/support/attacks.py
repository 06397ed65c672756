"""The attack table of tests/test_security_attacks.py: one row per class of attack the
security-hardening issue names, each a request (or raw socket exchange) against the live
gateway and the statuses that count as a clean refusal; and the actors who make them."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import requests

from tests.support.contract_client import ContractClient, b64url
from tests.support.dpop import FINGERPRINT, DeviceKey
from tests.support.videos import register_user


# ---- actors -------------------------------------------------------------------------------------
@dataclass
class Actor:
    user: dict
    client: ContractClient

    @property
    def bearer(self) -> dict:
        return {"Authorization": f"Bearer {self.user['access_token']}"}


def actor(gw: str, prefix: str) -> Actor:
    user = register_user(gw, prefix)
    return Actor(user, ContractClient(gw).login(user["username"], user["password"]))


# ---- raw HTTP for bodies requests can't send (lying lengths, stalls) ----------------------------
def raw_request(base: str, head: str, body_part: bytes = b"", timeout: float = 10) -> tuple[int, bytes, float]:
    """Send ``head`` (request line + headers, no blank line) and the first bytes of a body;
    return (status, response bytes, seconds until the status line arrived)."""
    u = urlsplit(base)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    t0 = time.monotonic()
    try:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body_part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - t0
    finally:
        sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data, elapsed


# ---- the attack table -------------------------------------------------------------------------
@dataclass
class Attack:
    name: str
    run: Callable[[dict], requests.Response | tuple[int, bytes, float]]
    expect: tuple[int, ...]


def _jwt_unsigned(claims: dict, header: dict) -> str:
    enc = lambda d: b64url(json.dumps(d, separators=(",", ":")).encode())  # noqa: E731
    return f"{enc(header)}.{enc(claims)}."


def _forged_tokens(ctx) -> dict[str, str]:
    """Tokens an attacker can make without the signing key."""
    gw, victim = ctx["gw"], ctx["alice"].user
    now = int(time.time())
    claims = {"sub": victim["id"], "name": victim["username"], "role": "admin", "iss": "streamvault-auth",
              "aud": "streamvault", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    jwks = requests.get(f"{gw}/.well-known/jwks.json").json()
    kid = jwks["keys"][0]["kid"]
    none = _jwt_unsigned(claims, {"alg": "none", "typ": "JWT", "kid": kid})
    # HS256 "signed" with the public key (the classic algorithm-confusion attack).
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(claims).encode())
    mac = hmac.new(json.dumps(jwks["keys"][0]).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{head}.{body}.{b64url(mac)}"
    # A real token of Mallory's with the payload changed to Alice-as-admin, signature kept.
    real = ctx["mallory"].user["access_token"].split(".")
    tampered = f"{real[0]}.{b64url(json.dumps(claims).encode())}.{real[2]}"
    return {"none": none, "confused": confused, "tampered": tampered}


def profile(ctx, **kw):
    return requests.get(f"{ctx['gw']}/api/auth/profile", timeout=10, **kw)


def token_attacks() -> list[Attack]:
    def forged(kind):
        return lambda ctx: profile(ctx, headers={"Authorization": f"Bearer {_forged_tokens(ctx)[kind]}"})

    def device_token_in_cookie(ctx):
        return profile(ctx, cookies={"sv_access": ctx["alice"].client.device_token})

    def device_token_as_bearer(ctx):
        return profile(ctx, headers={"Authorization": f"Bearer {ctx['alice'].client.device_token}"})

    def proof_from_other_key(ctx):
        url = f"{ctx['gw']}/api/auth/profile"
        token = ctx["alice"].client.device_token
        return profile(ctx, headers={"Authorization": f"DPoP {token}",
                                      "DPoP": DeviceKey().proof("GET", url, token)})

    def proof_replayed(ctx):
        url = f"{ctx['gw']}/api/auth/profile"
        c = ctx["alice"].client
        headers = c.dpop_headers("GET", url)
        first = profile(ctx, headers=headers)
        assert first.status_code == 200, first.text
        return profile(ctx, headers=headers)

    def proof_for_other_url(ctx):
        c = ctx["alice"].client
        return profile(ctx, headers=c.dpop_headers("GET", f"{ctx['gw']}/api/devices"))

    def proof_from_far_future(ctx):
        url = f"{ctx['gw']}/api/auth/profile"
        c = ctx["alice"].client
        proof = c.device.proof("GET", url, c.device_token, iat=time.time() + 3600)
        return profile(ctx, headers={"Authorization": f"DPoP {c.device_token}", "DPoP": proof})

    def stolen_device_token_mints_for_own_key(ctx):
        """Mallory holds Alice's device token and asks for a token bound to his own key."""
        url = f"{ctx['gw']}/api/auth/device-token"
        stolen = ctx["alice"].client.device_token
        own = DeviceKey()
        for auth in (f"Bearer {stolen}", f"DPoP {stolen}"):
            r = requests.post(url, json={"fingerprint": FINGERPRINT}, timeout=10,
                              headers={"Authorization": auth, "DPoP": own.proof("POST", url, stolen)})
            if r.status_code < 400:
                return r
        return requests.post(url, json={"fingerprint": FINGERPRINT}, cookies={"sv_access": stolen}, timeout=10,
                             headers={"DPoP": own.proof("POST", url)})

    def cookie_without_csrf(ctx):
        return requests.post(f"{ctx['gw']}/api/auth/device-token", json={"fingerprint": FINGERPRINT},
                             cookies={"sv_access": ctx["alice"].user["access_token"]}, timeout=10,
                             headers={"DPoP": DeviceKey().proof("POST", f"{ctx['gw']}/api/auth/device-token")})

    return [Attack("alg none token", forged("none"), (401,)),
            Attack("HS256 token keyed with the public JWK", forged("confused"), (401,)),
            Attack("payload swapped under a real signature", forged("tampered"), (401,)),
            Attack("device token in the cookie without a proof", device_token_in_cookie, (401,)),
            Attack("device token as a plain bearer", device_token_as_bearer, (401,)),
            Attack("DPoP proof from another key", proof_from_other_key, (401,)),
            Attack("DPoP proof replayed", proof_replayed, (401,)),
            Attack("DPoP proof for another URL", proof_for_other_url, (401,)),
            Attack("DPoP proof an hour in the future", proof_from_far_future, (401,)),
            Attack("stolen device token mints a token for the thief's key", stolen_device_token_mints_for_own_key,
                   (401, 403)),
            Attack("cookie-authenticated POST without CSRF token", cookie_without_csrf, (403,))]


def body_attacks() -> list[Attack]:
    big = 64 * 1024 * 1024

    def lying_length(path, ctype="application/json", auth=""):
        def run(ctx):
            host = urlsplit(ctx["gw"]).netloc
            head = (f"POST {path} HTTP/1.1\nHost: {host}\nContent-Type: {ctype}\nContent-Length: {big}\n"
                    f"Connection: close{auth}")
            return raw_request(ctx["gw"], head, b"{" + b" " * 65536)
        return run

    def chunked_flood(ctx):
        """No Content-Length: 8 MiB of JSON whitespace, chunked, to an anonymous route."""
        def gen():
            yield b'{"username": "x", "password": "'
            for _ in range(128):
                yield b"a" * 65536
            yield b'"}'
        try:
            return requests.post(f"{ctx['gw']}/api/auth/login", data=gen(), timeout=20,
                                 headers={"Content-Type": "application/json"})
        except requests.ConnectionError:   # refused mid-body: the server closed on us, still no 5xx
            return (413, b"closed while sending", 0.0)

    def multipart_login(ctx):
        files = {"junk": ("j.bin", b"\0" * (4 * 1024 * 1024))}
        return requests.post(f"{ctx['gw']}/auth/login", data={"username": "x", "password": "y"}, files=files,
                             timeout=20)

    def malformed_json(ctx):
        return requests.post(f"{ctx['gw']}/api/auth/register", data=b'{"username": ', timeout=10,
                             headers={"Content-Type": "application/json"})

    def json_array(ctx):
        return requests.post(f"{ctx['gw']}/api/auth/login", json=["admin", "password"], timeout=10)

    def unicode_digits(header):
        def run(ctx):
            url = ctx["world"]["upload"]
            headers = {**ctx["alice"].bearer, "Tus-Resumable": "1.0.0", header: "1²"}
            if header == "Upload-Length":
                headers["Upload-Metadata"] = "filename " + base64.b64encode(b"u.mp4").decode()
                return requests.post(f"{ctx['gw']}/api/uploads", headers=headers, timeout=10)
            headers["Content-Type"] = "application/offset+octet-stream"
            return requests.patch(url, headers=headers, data=b"x", timeout=10)
        return run

    def huge_page(path, who):
        def run(ctx):
            headers = ctx[who].bearer
            return requests.get(f"{ctx['gw']}{path}?page=99999999999999999999", headers=headers, timeout=10)
        return run

    return [Attack("64 MiB JSON announced to register (anonymous)", lying_length("/api/auth/register"), (413,)),
            Attack("64 MiB multipart announced to the login form", lying_length(
                "/auth/login", "multipart/form-data; boundary=x"), (413,)),
            Attack("64 MiB announced to the forensics upload without credentials", lying_length(
                "/api/forensics/detect", "multipart/form-data; boundary=x"), (401, 403, 413)),
            Attack("64 MiB announced to a playback session open without credentials", lying_length(
                "/api/stream/sessions"), (401, 413)),
            Attack("8 MiB chunked JSON to the login API", chunked_flood, (413,)),
            Attack("4 MiB multipart to the login form", multipart_login, (413,)),
            Attack("truncated JSON", malformed_json, (400,)),
            Attack("JSON array instead of an object", json_array, (400,)),
            Attack("Unicode digits in Upload-Length", unicode_digits("Upload-Length"), (400,)),
            Attack("Unicode digits in Upload-Offset", unicode_digits("Upload-Offset"), (400,)),
            Attack("page=1e20 on the library", huge_page("/api/library", "alice"), (400,)),
            Attack("page=1e20 on the admin user list", huge_page("/api/admin/users", "admin"), (400,))]


def idor_attacks() -> list[Attack]:
    """Mallory, logged in, reaches for Alice's things by id."""
    def as_mallory(method, path_of, body=None):
        def run(ctx):
            path = path_of(ctx)
            return requests.request(method, f"{ctx['gw']}{path}", json=body, headers=ctx["mallory"].bearer, timeout=10)
        return run

    def mallory_dpop(method, path_of, body=None):
        def run(ctx):
            return ctx["mallory"].client.call(method, path_of(ctx), body, expect=None, timeout=10)
        return run

    def tus(method):
        def run(ctx):
            headers = {**ctx["mallory"].bearer, "Tus-Resumable": "1.0.0"}
            if method == "PATCH":
                headers.update({"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            return requests.request(method, ctx["world"]["upload"], headers=headers, data=b"x" * 10, timeout=10)
        return run

    def alice_device_id(ctx):
        return f"/api/devices/{ctx['alice'].client.device_id}"

    vid = lambda key: lambda ctx: f"/api/videos/{ctx['world'][key]}"  # noqa: E731
    sid = lambda suffix: lambda ctx: f"/api/stream/sessions/{ctx['world']['session'].id}{suffix}"  # noqa: E731
    return [Attack("read another user's private video", as_mallory("GET", vid("private")), (403, 404)),
            Attack("edit another user's video", as_mallory("PATCH", vid("public"), {"title": "pwned"}), (403, 404)),
            Attack("delete another user's video", as_mallory("DELETE", vid("public")), (403, 404)),
            Attack("download another user's original", as_mallory(
                "GET", lambda ctx: f"/api/videos/{ctx['world']['private']}/original"), (403, 404)),
            Attack("watch another user's progress events", as_mallory(
                "GET", lambda ctx: f"/api/videos/{ctx['world']['private']}/events"), (403, 404)),
            Attack("revoke another user's device", as_mallory("DELETE", alice_device_id), (403, 404)),
            Attack("append to another user's upload", tus("PATCH"), (403, 404)),
            Attack("read another user's upload offset", tus("HEAD"), (403, 404)),
            Attack("cancel another user's upload", tus("DELETE"), (403, 404)),
            Attack("heartbeat another user's session", mallory_dpop("POST", sid("/heartbeat"), {"position": 1}),
                   (403, 404)),
            Attack("read another user's session security", mallory_dpop("GET", sid("/security")), (403, 404)),
            Attack("end another user's session", mallory_dpop("DELETE", sid("")), (403, 404)),
            Attack("open a session on a password video without the password", lambda ctx: ctx["mallory"].client.call(
                "POST", "/api/stream/sessions", {"video_id": ctx["world"]["locked"], "client_public_key": _eph_jwk()},
                expect=None, timeout=10), (403,)),
            Attack("open a session on a private video", lambda ctx: ctx["mallory"].client.call(
                "POST", "/api/stream/sessions", {"video_id": ctx["world"]["private"], "client_public_key": _eph_jwk()},
                expect=None, timeout=10), (403, 404))]


def _eph_jwk() -> dict:
    return DeviceKey().jwk


ATTACKS = token_attacks() + body_attacks() + idor_attacks()
