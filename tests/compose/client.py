"""A small client of the public contract (docs/api.md), through the gateway only.
Later phases (upload -> ready -> playback, forensics) add their calls here."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

import requests

GATEWAY = os.environ.get("SV_GATEWAY_URL", "http://127.0.0.1:8080")


@dataclass
class User:
    username: str
    email: str
    password: str
    access_token: str | None = None
    refresh_token: str | None = None
    info: dict = field(default_factory=dict)


class Gateway:
    def __init__(self, base: str = GATEWAY) -> None:
        self.base = base.rstrip("/")
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 15)
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.url(path), **kw)

    def post(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 15)
        kw.setdefault("allow_redirects", False)
        return self.http.post(self.url(path), **kw)

    # ---- auth-svc -----------------------------------------------------------------
    @staticmethod
    def new_user(prefix: str = "smoke") -> User:
        name = f"{prefix}{secrets.token_hex(4)}"
        return User(name, f"{name}@example.test", "Pw-" + secrets.token_urlsafe(12))

    def register(self, user: User) -> requests.Response:
        return self.post("/api/auth/register", json={"username": user.username, "email": user.email,
                                                     "password": user.password})

    def signed_up(self, prefix: str = "smoke") -> User:
        """A new user, registered through the gateway."""
        user = self.new_user(prefix)
        r = self.register(user)
        assert r.status_code == 201, r.text
        return user

    def login(self, user: User) -> requests.Response:
        r = self.post("/api/auth/login", json={"username": user.username, "password": user.password})
        if r.status_code == 200:
            body = r.json()
            user.access_token, user.refresh_token, user.info = (body["access_token"], body["refresh_token"],
                                                                body["user"])
        return r

    def profile(self, user: User) -> requests.Response:
        return self.get("/api/auth/profile", headers={"Authorization": f"Bearer {user.access_token}"})
