"""Password change (re-authentication; other sessions revoked), admin-issued one-time reset
links (hashed, short-lived, single use, audited) and the account page's actions."""
from __future__ import annotations

import email
import hashlib
import json
import logging
import re
import socketserver
import threading
from urllib.parse import urlsplit

from svcommon.db import execute, query

from .conftest import live_playback_session, page_login


def _events(app, user_id, kind):
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        return query(conn, "SELECT detail FROM security_events WHERE user_id = %s AND kind = %s", (user_id, kind))


def test_password_change_is_under_the_login_throttle(app, client, auth):
    """A stolen session must not be a free oracle for the account's password: wrong current
    passwords count as failed logins of the (account, address) pair, which then locks."""
    user = auth.register()
    csrf = page_login(client, user)
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"]):
        wrong = client.post("/auth/account/password", data={"csrf_token": csrf, "current_password": "a wrong guess",
                                                            "new_password": "a brand new passphrase"})
        assert wrong.status_code == 400
    locked = client.post("/auth/account/password", data={"csrf_token": csrf, "current_password": user["password"],
                                                         "new_password": "a brand new passphrase"})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "too many failed logins" in locked.get_data(as_text=True)
    assert auth.login(user["username"], user["password"]).status_code == 429     # the same pair
    assert len(_events(app, user["id"], "password_change_refused")) == app.config["LOGIN_MAX_FAILURES_ACCOUNT"]


def test_password_change_reauthenticates_and_revokes_other_sessions(app, client, auth):
    user = auth.register()
    other = auth.login(user["username"], user["password"]).get_json()["refresh_token"]
    csrf = page_login(client, user)
    wrong = client.post("/auth/account/password", data={"csrf_token": csrf, "current_password": "not it at all",
                                                        "new_password": "a brand new passphrase"})
    assert wrong.status_code == 400 and "Current password is wrong." in wrong.get_data(as_text=True)
    weak = client.post("/auth/account/password", data={"csrf_token": csrf, "current_password": user["password"],
                                                       "new_password": "password123"})
    assert weak.status_code == 400 and "common or breached" in weak.get_data(as_text=True)
    ok = client.post("/auth/account/password", data={"csrf_token": csrf, "current_password": user["password"],
                                                     "new_password": "a brand new passphrase"})
    assert ok.status_code == 303 and ok.headers["Location"] == "/auth/account"
    assert "Your password has been changed" in client.get("/auth/account").get_data(as_text=True)
    assert client.post("/api/auth/refresh", json={"refresh_token": other}).status_code == 401   # other: revoked
    assert client.post("/api/auth/refresh", headers={"X-CSRF-Token": csrf}).status_code == 200   # this one stays
    assert auth.login(user["username"], user["password"]).status_code == 401
    assert auth.login(user["username"], "a brand new passphrase").status_code == 200
    assert _events(app, user["id"], "password_changed")


def _reset_rows(app, user_id):
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        return query(conn, "SELECT token_hash, used_at FROM password_resets WHERE user_id = %s", (user_id,))


def test_reset_link_is_admin_only_hashed_single_use_and_audited(app, client, auth, caplog):
    user = auth.register()
    session = auth.login(user["username"], user["password"]).get_json()["refresh_token"]
    playback = live_playback_session(app, user["id"])
    _, viewer = auth.user_with_token()
    refused = client.post(f"/api/admin/users/{user['id']}/reset-link",
                          headers={"Authorization": f"Bearer {viewer['access_token']}"})
    assert refused.status_code == 403
    admin = {"Authorization": f"Bearer {auth.admin_token()}"}
    first = client.post(f"/api/admin/users/{user['id']}/reset-link", headers=admin).get_json()
    resp = client.post(f"/api/admin/users/{user['id']}/reset-link", headers=admin)
    assert resp.status_code == 200
    url = resp.get_json()["url"]
    token = url.rsplit("/", 1)[1]
    path = "/auth/reset/" + token
    stored = _reset_rows(app, user["id"])
    assert len(stored) == 2 and hashlib.sha256(token.encode()).digest() in {bytes(r["token_hash"]) for r in stored}
    assert all(token.encode() not in bytes(r["token_hash"]) for r in stored)
    # The older link died with the newer one.
    assert client.get("/auth/reset/" + first["url"].rsplit("/", 1)[1]).headers["Location"] == "/auth/login"
    with caplog.at_level(logging.INFO, logger="auth-svc.access"):
        first_record = len(caplog.records)      # (records of earlier requests may be captured too)
        page = client.get(path)
        assert page.status_code == 200 and user["username"] in page.get_data(as_text=True)
        assert client.head(path).status_code == 200
        csrf = client.get_cookie("sv_csrf").value
        assert client.post(path, data={"password": "reset to something new"}).status_code == 403   # no CSRF
        weak = client.post(path, data={"csrf_token": csrf, "password": "aaaaaaaaaa"})
        assert weak.status_code == 400 and "too easy to guess" in weak.get_data(as_text=True)
        assert user["username"] in weak.get_data(as_text=True)          # the form again, for this user
        done = client.post(path, data={"csrf_token": csrf, "password": "reset to something new"})
    assert done.status_code == 303 and done.headers["Location"] == "/auth/login"
    # The one-time token is a secret: the access log shows where, never what.
    lines = [r for r in caplog.records[first_record:] if r.name == "auth-svc.access"]
    assert [r.path for r in lines] == ["/auth/reset/-"] * 5
    assert token not in json.dumps([{**vars(r), "args": None} for r in caplog.records], default=str)
    assert auth.login(user["username"], "reset to something new").status_code == 200
    # Signed out everywhere: refresh tokens and playback sessions.
    assert client.post("/api/auth/refresh", json={"refresh_token": session}).status_code == 401
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        ended = query(conn, "SELECT ended_at, end_reason FROM playback_sessions WHERE id = %s", (playback,), one=True)
        paths = {r["path"] for r in query(conn, "SELECT path FROM security_events WHERE user_id = %s",
                                          (user["id"],))}
    assert ended["ended_at"] is not None and ended["end_reason"] == "ended_by_user"
    assert "/auth/reset/-" in paths and not any(token in p for p in paths)
    again = client.post(path, data={"csrf_token": csrf, "password": "and once more please"})
    assert again.status_code == 303 and "reset link" in client.get("/auth/login").get_data(as_text=True)
    assert _events(app, user["id"], "password_reset_issued") and _events(app, user["id"], "password_reset_used")


def test_reset_link_expires(app, client, auth):
    user = auth.register()
    url = client.post(f"/api/admin/users/{user['id']}/reset-link",
                      headers={"Authorization": f"Bearer {auth.admin_token()}"}).get_json()["url"]
    path = urlsplit(url).path
    assert client.get(path).status_code == 200                      # the form, while it is valid
    csrf = client.get_cookie("sv_csrf").value
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        execute(conn, "UPDATE password_resets SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND "
                      "WHERE user_id = %s", (user["id"],))
        conn.commit()
    resp = client.get(path)
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    # The form opened before it expired is refused when sent: the password stays.
    resp = client.post(path, data={"csrf_token": csrf, "password": "reset to something new"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    assert "invalid, used or expired" in client.get("/auth/login").get_data(as_text=True)
    assert auth.login(user["username"], "reset to something new").status_code == 401
    assert auth.login(user["username"], user["password"]).status_code == 200


def test_sign_out_everywhere(app, client, auth):
    user = auth.register()
    other = auth.login(user["username"], user["password"]).get_json()["refresh_token"]
    csrf = page_login(client, user)
    resp = client.post("/auth/account/sign-out-everywhere", data={"csrf_token": csrf})
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    assert client.get_cookie("sv_refresh") is None
    assert client.post("/api/auth/refresh", json={"refresh_token": other}).status_code == 401
    assert _events(app, user["id"], "signed_out_everywhere")


def test_account_actions_need_csrf_and_own_objects(client, auth):
    user = auth.register()
    csrf = page_login(client, user)
    # Without the token the cookie does not authenticate the POST: back to log in, nothing changed.
    forged = client.post("/auth/account/password", data={"current_password": user["password"],
                                                          "new_password": "a brand new passphrase"})
    assert forged.status_code == 303 and forged.headers["Location"].startswith("/auth/")
    assert auth.login(user["username"], user["password"]).status_code == 200
    assert client.post("/auth/account/devices/nope/revoke", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/auth/account/sessions/nope/end", data={"csrf_token": csrf}).status_code == 404
    page = client.get("/auth/account")
    assert page.status_code == 200 and user["username"] in page.get_data(as_text=True)


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321, no extensions) to receive one message over a real socket."""

    def handle(self):
        say = lambda line: self.wfile.write(line.encode() + b"\r\n")  # noqa: E731
        say("220 test ready")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                say("354 go on")
                body = b"".join(iter(lambda: self.rfile.readline(), b".\r\n"))
                self.server.messages.append(email.message_from_bytes(body))
                say("250 queued")
            elif verb == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")


def test_reset_link_is_mailed_when_smtp_is_configured(app, service_config, auth):
    from auth_svc import create_app
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler) as smtp:
        smtp.messages = []
        threading.Thread(target=smtp.serve_forever, daemon=True).start()
        mailing = create_app({**service_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.server_address[1],
                              "SMTP_STARTTLS": False})
        user = auth.register()
        resp = mailing.test_client().post(f"/api/admin/users/{user['id']}/reset-link",
                                          headers={"Authorization": f"Bearer {auth.admin_token()}"})
        smtp.shutdown()
    assert resp.status_code == 200 and set(resp.get_json()) == {"sent_to", "expires_at"}   # no link for the admin
    (msg,) = smtp.messages
    assert msg["To"] == user["email"]
    assert re.search(r"http://localhost/auth/reset/[\w-]{40,}", msg.get_payload())


def test_mail_server_down_is_a_clear_502_and_changes_nothing(app, client, service_config, auth):
    from auth_svc import create_app
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as unused:
        port = unused.server_address[1]            # closed again below: nothing listens there
    mailing = create_app({**service_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False})
    user = auth.register()
    admin = {"Authorization": f"Bearer {auth.admin_token()}"}
    earlier = client.post(f"/api/admin/users/{user['id']}/reset-link", headers=admin).get_json()["url"]
    resp = mailing.test_client().post(f"/api/admin/users/{user['id']}/reset-link", headers=admin)
    assert resp.status_code == 502 and resp.get_json()["code"] == "mail_failed"
    # Nothing was sent, so nothing changed: no new link, the one the user holds still works,
    # and no issue is recorded for the failed one.
    assert [r["used_at"] for r in _reset_rows(app, user["id"])] == [None]
    assert client.get(urlsplit(earlier).path).status_code == 200
    assert len(_events(app, user["id"], "password_reset_issued")) == 1
