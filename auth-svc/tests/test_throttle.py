"""Login throttling per account and per client address."""
from __future__ import annotations

from svcommon.db import query


def test_account_lockout_after_repeated_failures(app, client, auth):
    user = auth.register()
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"]):
        assert auth.login(user["username"], "wrong password!").status_code == 401
    locked = auth.login(user["username"], user["password"])   # even the right password waits
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert locked.get_json()["code"] == "too_many_attempts"
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        kinds = [r["kind"] for r in query(conn, "SELECT kind FROM security_events WHERE ip = %s",
                                          (client.environ_base["HTTP_X_FORWARDED_FOR"],))]
    assert kinds.count("login_failed") == app.config["LOGIN_MAX_FAILURES_ACCOUNT"]
    assert "login_throttled" in kinds


def test_lockout_applies_from_another_address(app, client, auth):
    user = auth.register()
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"]):
        auth.login(user["username"], "wrong password!")
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "10.99.99.99"
    assert auth.login(user["username"], user["password"]).status_code == 429


def test_ip_throttle_across_accounts(app, client, auth):
    for i in range(app.config["LOGIN_MAX_FAILURES_IP"]):
        assert auth.login(f"nobody{i}", "wrong password!").status_code == 401
    assert auth.login("nobody-else", "wrong password!").status_code == 429


def test_success_resets_the_account_counter(app, client, auth):
    user = auth.register()
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"] - 1):
        auth.login(user["username"], "wrong password!")
    assert auth.login(user["username"], user["password"]).status_code == 200
    assert auth.login(user["username"], "wrong password!").status_code == 401
    assert auth.login(user["username"], user["password"]).status_code == 200


def test_unknown_user_and_wrong_password_look_the_same(client, auth):
    user = auth.register()
    a = auth.login(user["username"], "wrong password!").get_json()
    b = auth.login("no-such-user-xyz", "wrong password!").get_json()
    assert a == b == {"error": "wrong username or password", "code": "invalid_credentials"}
