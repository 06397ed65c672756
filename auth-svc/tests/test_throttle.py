"""Login throttling per (account, client address) and per address; an account attacked from
everywhere is slowed down, never locked for its owner (OWASP ASVS V2.2). Sign-ups per address."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from auth_svc import throttle
from svcommon.db import execute, query

from .conftest import random_ip


def _events(app, ip: str) -> list[str]:
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        return [r["kind"] for r in query(conn, "SELECT kind FROM security_events WHERE ip = %s", (ip,))]


def test_account_and_address_pair_locks_after_repeated_failures(app, client, auth):
    user = auth.register()
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"]):
        assert auth.login(user["username"], "wrong password!").status_code == 401
    locked = auth.login(user["username"], user["password"])   # this address waits, even with the right one
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert locked.get_json()["code"] == "too_many_attempts"
    kinds = _events(app, client.environ_base["HTTP_X_FORWARDED_FOR"])
    assert kinds.count("login_failed") == app.config["LOGIN_MAX_FAILURES_ACCOUNT"]
    assert "login_throttled" in kinds


def test_owner_still_logs_in_from_another_address(app, client, auth):
    """Failures from an attacker's address once locked the account for everyone (issue #11)."""
    user = auth.register()
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"] + 2):
        auth.login(user["username"], "wrong password!")
    assert auth.login(user["username"], user["password"]).status_code == 429    # the attacker's address
    client.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()
    assert auth.login(user["username"], user["password"]).status_code == 200


def test_account_attacked_from_many_addresses_is_slowed_not_locked(app, client, auth, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_SLOWDOWN_AFTER", 3)
    monkeypatch.setitem(app.config, "LOGIN_SLOWDOWN_STEP_SECONDS", 0.2)
    monkeypatch.setitem(app.config, "LOGIN_SLOWDOWN_MAX_SECONDS", 0.5)
    user = auth.register()
    attackers = [random_ip() for _ in range(4)]
    for ip in attackers:            # 3 failures each: no address reaches its own lock
        client.environ_base["HTTP_X_FORWARDED_FOR"] = ip
        for _ in range(3):
            assert auth.login(user["username"], "wrong password!").status_code == 401
    assert "login_slowdown" in sum((_events(app, ip) for ip in attackers), [])
    client.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()
    # The delay the throttle asks for, not wall time (a loaded machine makes any login slow).
    waits = []
    monkeypatch.setattr(throttle.time, "sleep", waits.append)
    resp = auth.login(user["username"], user["password"])
    assert resp.status_code == 200, resp.get_json()
    assert waits == [0.5]                         # slowed by the bounded delay, not refused
    waits.clear()                                 # the owner's success ended the slow-down
    assert auth.login(user["username"], user["password"]).status_code == 200
    assert waits == []


def _guesses_at_once(app, ip: str, logins: list[tuple[str, str]]) -> list[int]:
    """POST every (username, password) at the same instant from ``ip``, each in its own
    thread and client (gunicorn's request threads), and return the status codes."""
    start = threading.Barrier(len(logins))

    def login(pair: tuple[str, str]) -> int:
        c = app.test_client()
        c.environ_base["HTTP_X_FORWARDED_FOR"] = ip
        start.wait()
        return c.post("/api/auth/login", json={"username": pair[0], "password": pair[1]}).status_code

    with ThreadPoolExecutor(len(logins)) as pool:
        return list(pool.map(login, logins))


def test_parallel_guesses_get_no_more_tries_than_the_limit(app, client, auth):
    """An attacker sending many guesses at once: each is counted before its (slow) password
    check, so exactly LOGIN_MAX_FAILURES_ACCOUNT are checked and the rest are refused. When
    the check came first and the count after it, every guess that arrived before the first
    failure was counted passed the check (12 of 12 here)."""
    user, ip = auth.register(), random_ip()
    limit = app.config["LOGIN_MAX_FAILURES_ACCOUNT"]
    codes = _guesses_at_once(app, ip, [(user["username"], f"wrong guess {i}!") for i in range(limit + 7)])
    assert sorted(codes) == [401] * limit + [429] * 7, codes
    assert _events(app, ip).count("login_failed") == limit


def test_a_right_password_among_parallel_guesses_is_refunded(app, client, auth, monkeypatch):
    """Each attempt counts as a failure until its password proves right; a right one takes its
    count back, also from the address's counter (never locking the address for it)."""
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_IP", 4)
    user, ip = auth.register(), random_ip()
    others = [(f"nobody-{uuid.uuid4().hex[:8]}", "wrong password!") for _ in range(3)]
    codes = _guesses_at_once(app, ip, others + [(user["username"], user["password"])])
    assert sorted(codes) == [200, 401, 401, 401], codes
    client.environ_base["HTTP_X_FORWARDED_FOR"] = ip
    assert auth.login("nobody-else", "wrong password!").status_code == 401     # the 4th failure
    assert auth.login("nobody-else", "wrong password!").status_code == 429


def test_a_prune_that_loses_a_lock_race_leaves_the_login_answered(app, client, auth, monkeypatch):
    """The opportunistic prune runs after the attempt was counted (and after a sign-up's or a
    strength check's count): a deadlock there (its deletes lock rows in another order than
    attempts do) is dropped, the request still gets its answer and its count stays. Before,
    it was the request's 503 (here the sign-up's first)."""
    import mysql.connector.errors as myerrors
    from auth_svc import repository
    monkeypatch.setattr(throttle, "PRUNE_ONE_IN", 1)

    def deadlocked(*args, **kwargs):
        raise myerrors.InternalError(msg="Deadlock found when trying to get lock", errno=1213)

    monkeypatch.setattr(repository, "prune_throttle", deadlocked)
    user = auth.register()
    assert auth.login(user["username"], "wrong password!").status_code == 401
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        row = query(conn, "SELECT failures FROM login_throttle WHERE scope = 'account_ip' AND subject = %s",
                    (f"{client.environ_base['HTTP_X_FORWARDED_FOR']}|{user['username'].lower()}",), one=True)
    assert row == {"failures": 1}
    assert auth.login(user["username"], user["password"]).status_code == 200


def test_ip_throttle_across_accounts(app, client, auth):
    for i in range(app.config["LOGIN_MAX_FAILURES_IP"]):
        assert auth.login(f"nobody{i}", "wrong password!").status_code == 401
    assert auth.login("nobody-else", "wrong password!").status_code == 429


def test_success_resets_the_pair_counter(app, client, auth):
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


def _signup(client, n: int):
    return client.post("/api/auth/register", json={"username": f"su{n}_{time.time_ns() % 10**9}",
                                                   "email": f"su{n}_{time.time_ns()}@example.test",
                                                   "password": "a long enough password"})


def test_signups_are_rate_limited_per_address(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNUP_MAX_PER_IP", 3)
    for n in range(3):
        assert _signup(client, n).status_code == 201
    refused = _signup(client, 3)
    assert refused.status_code == 429 and refused.get_json()["code"] == "too_many_signups"
    assert 0 < int(refused.headers["Retry-After"]) <= app.config["SIGNUP_WINDOW_SECONDS"]
    assert "signup_throttled" in _events(app, client.environ_base["HTTP_X_FORWARDED_FOR"])
    page = client.get("/auth/signup")                   # the HTML form is limited by the same counter
    csrf = client.get_cookie("sv_csrf").value
    resp = client.post("/auth/signup", data={"username": "su_page_x", "email": "supx@example.test",
                                             "password": "a long enough password", "csrf_token": csrf})
    assert page.status_code == 200 and resp.status_code == 429 and "Retry-After" in resp.headers
    client.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()   # another address is not affected
    assert _signup(client, 4).status_code == 201


def test_invalid_signups_do_not_count(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNUP_MAX_PER_IP", 1)
    for _ in range(3):
        bad = client.post("/api/auth/register", json={"username": "x", "email": "bad", "password": "short"})
        assert bad.status_code == 400
    assert _signup(client, 0).status_code == 201


def test_password_strength_checks_are_rate_limited_per_address(app, client, monkeypatch):
    # The check needs no login and costs real CPU (zxcvbn): an address gets a bounded number.
    monkeypatch.setitem(app.config, "PASSWORD_CHECKS_PER_MINUTE", 3)
    for _ in range(3):
        assert client.post("/api/auth/password-check", json={"password": "a long enough password"}).status_code == 200
    refused = client.post("/api/auth/password-check", json={"password": "a long enough password"})
    assert refused.status_code == 429 and refused.get_json()["code"] == "too_many_password_checks"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "password_check_throttled" in _events(app, client.environ_base["HTTP_X_FORWARDED_FOR"])
    client.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()   # another address is not affected
    assert client.post("/api/auth/password-check", json={"password": "a long enough password"}).status_code == 200


def test_invalid_signups_count_against_the_password_check_budget(app, client, monkeypatch):
    """Every sign-up runs the password check (zxcvbn, ~30 ms), valid input or not: an address
    gets no more of it through sign-up than through POST /api/auth/password-check."""
    monkeypatch.setitem(app.config, "PASSWORD_CHECKS_PER_MINUTE", 3)
    bad = {"username": "x", "email": "bad", "password": "a long enough password"}
    for _ in range(3):
        assert client.post("/api/auth/register", json=bad).status_code == 400
    refused = client.post("/api/auth/register", json=bad)
    assert refused.status_code == 429 and refused.get_json()["code"] == "too_many_password_checks"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    client.get("/auth/signup")
    page = client.post("/auth/signup", data={**bad, "csrf_token": client.get_cookie("sv_csrf").value})
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert client.post("/api/auth/password-check", json={"password": "a long enough password"}).status_code == 429
    client.environ_base["HTTP_X_FORWARDED_FOR"] = random_ip()   # another address is not affected
    assert _signup(client, 0).status_code == 201


def test_dead_counters_are_pruned(app, client, monkeypatch):
    """Rows whose window has passed and that lock nothing go as new counts are written (one
    write in PRUNE_ONE_IN; here every one); live windows and running locks stay."""
    from auth_svc import throttle
    monkeypatch.setattr(throttle, "PRUNE_ONE_IN", 1, raising=False)
    tag = uuid.uuid4().hex
    rows = {   # subject -> (scope, window opened seconds ago, locked for seconds from now)
        f"old-{tag}": ("password_check", 120, None), f"old-{tag}|acct": ("account_ip", 86400, None),
        f"oldsignup-{tag}": ("signup", app.config["SIGNUP_WINDOW_SECONDS"] + 60, None),
        f"unlocked-{tag}": ("ip", 86400, -60),
        f"live-{tag}": ("password_check", 10, None), f"locked-{tag}": ("ip", 86400, 600),
        f"livesignup-{tag}": ("signup", 60, None)}
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        for subject, (scope, age, lock) in rows.items():
            execute(conn, "INSERT INTO login_throttle (scope, subject, failures, window_start, locked_until) "
                          "VALUES (%s, %s, 3, UTC_TIMESTAMP(6) - INTERVAL %s SECOND, "
                          "IF(%s IS NULL, NULL, UTC_TIMESTAMP(6) + INTERVAL %s SECOND))",
                    (scope, subject, age, lock, lock))
        conn.commit()
    assert client.post("/api/auth/password-check", json={"password": "a long enough password"}).status_code == 200
    with app.app_context(), app.extensions["svcommon.db"].standalone() as conn:
        left = {r["subject"] for r in query(conn, "SELECT subject FROM login_throttle WHERE subject LIKE %s",
                                            (f"%{tag}%",))}
    assert left == {f"live-{tag}", f"locked-{tag}", f"livesignup-{tag}"}
