"""Password policy (NIST SP 800-63B / OWASP): length, common/breached list, guessability;
every problem reported at once, by the API (``fields``) and by the sign-up page."""
from __future__ import annotations

import re
import uuid

import pytest


def _body(password, username=None, email=None):
    tag = uuid.uuid4().hex[:10]
    return {"username": username or "pp_" + tag, "email": email or f"{tag}@example.test", "password": password}


@pytest.mark.parametrize("password,reason", [
    ("aaaaaaaaaa", "too easy to guess"),        # repeats
    ("password123", "common or breached"),
    ("qwertyuiop", "common or breached"),
    ("iloveyou12", "common or breached"),
    ("1234567890", "common or breached"),
    ("Password1!", "common or breached"),       # a common one with the usual decorations
    ("short", "at least 10 characters"),
])
def test_weak_passwords_are_refused(client, password, reason):
    resp = client.post("/api/auth/register", json=_body(password))
    assert resp.status_code == 400, password
    info = resp.get_json()
    assert info["code"] == "invalid_input" and reason in " ".join(info["fields"]["password"])


def test_account_details_make_a_password_guessable(client):
    resp = client.post("/api/auth/register", json=_body("mallory_42!!", username="mallory_42"))
    assert resp.status_code == 400 and "too easy to guess" in resp.get_json()["fields"]["password"][0]


@pytest.mark.parametrize("password", ["correct horse battery", "a long enough password", "zq8#Lm2!vR7p"])
def test_good_passwords_are_accepted(client, password):
    assert client.post("/api/auth/register", json=_body(password)).status_code == 201


def test_every_error_at_once(client):
    resp = client.post("/api/auth/register", json={"username": "x", "email": "nope", "password": "password"})
    info = resp.get_json()
    assert resp.status_code == 400 and set(info["fields"]) == {"username", "email", "password"}
    assert len(info["fields"]["password"]) == 2      # too short and common
    for message in (m for ms in info["fields"].values() for m in ms):
        assert message in info["error"]


def test_signup_page_lists_every_error(client):
    html = client.get("/auth/signup").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    resp = client.post("/auth/signup", data={"username": "x", "email": "nope", "password": "password",
                                             "csrf_token": csrf})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    alert = re.search(r'<div class="alert" role="alert".*?</div>', page, re.S).group(0)
    assert alert.count("<li>") == 4 and "common or breached" in alert and "Username must be" in alert
    assert page.count('aria-invalid="true"') == 3


def test_password_check_gives_the_hint_without_storing(client):
    weak = client.post("/api/auth/password-check", json={"password": "password123"}).get_json()
    assert weak["ok"] is False and weak["score"] == 0 and weak["errors"]
    strong = client.post("/api/auth/password-check", json={"password": "correct horse battery"}).get_json()
    assert strong == {"ok": True, "score": 4, "errors": [], "suggestions": []}
    assert client.post("/api/auth/password-check", json={}).status_code == 400
    assert client.post("/api/auth/password-check", json={"password": "x" * 300}).status_code == 400
