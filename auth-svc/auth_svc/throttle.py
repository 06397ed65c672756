"""Login and sign-up throttling that an attacker cannot turn against an account's owner
(OWASP ASVS V2.2). Failures inside ``LOGIN_WINDOW_SECONDS`` are counted

- per (account, client address): at ``LOGIN_MAX_FAILURES_ACCOUNT`` that pair is locked
  (``LOGIN_LOCK_SECONDS``, doubling per further failure, at most 64x) -> 429 + Retry-After;
- per client address, whatever the account: at ``LOGIN_MAX_FAILURES_IP`` the address is
  locked the same way;
- per account, from every address: never a lock. Past ``LOGIN_SLOWDOWN_AFTER`` failures
  every attempt on the account waits ``LOGIN_SLOWDOWN_STEP_SECONDS`` per extra failure (at
  most ``LOGIN_SLOWDOWN_MAX_SECONDS``) *before* its password is checked, right or wrong, so
  the delay tells nothing; the owner's correct password from an address that is not
  locked still logs in.

Each attempt is counted as a failure *before* its password is checked (and taken back once
it proves right), under the counters' row locks: guesses sent at the same instant queue
there one count at a time, so no more than the limit are ever checked. Checking first and
counting after let every guess that arrived before the first failure was counted through.

Sign-ups are counted per client address: ``SIGNUP_MAX_PER_IP`` per ``SIGNUP_WINDOW_SECONDS``;
password strength checks (and sign-up attempts, whose password is checked too)
``PASSWORD_CHECKS_PER_MINUTE`` per address. Every refusal is a security event.

Rows whose window has passed and that lock nothing are pruned opportunistically (about one
write in PRUNE_ONE_IN), so the table holds the live windows only, however many addresses
or account names have been tried: no cron job."""
from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app

from svcommon import security_events
from svcommon.db import DatabaseError
from svcommon.errors import APIError
from svcommon.timeutil import count_in_window, in_window, seconds_until, utcnow_naive

from . import repository as repo

PRUNE_ONE_IN = 256
LOCK_RACE_ERRNOS = (1205, 1213)      # lock wait timeout, deadlock
log = logging.getLogger("auth_svc.throttle")
PASSWORD_CHECK_WINDOW = 60


def _account(username: str) -> str:
    return username.lower()[:190]


def _locking_subjects(username: str, ip: str) -> list[tuple[str, str, int]]:
    cfg = current_app.config
    # An address never contains '|', so "ip|account" is unambiguous whatever the username.
    return [("account_ip", f"{ip[:64]}|{_account(username)}", cfg["LOGIN_MAX_FAILURES_ACCOUNT"]),
            ("ip", ip[:255], cfg["LOGIN_MAX_FAILURES_IP"])]


def _too_many(what: str, wait: int, code: str = "too_many_attempts"):
    return APIError(429, code, f"{what}; try again in {wait} seconds", {"Retry-After": str(wait)})


@dataclass
class LoginAttempt:
    """A login (or re-authentication) counted as a failure before its password is checked;
    ``succeeded`` takes the count back. ``locks_set``: the locks this attempt's count set,
    subject -> (the lock before, the lock it set), so a refund lifts only those."""
    username: str
    ip: str
    account_failures: int
    locks_set: dict[tuple[str, str], tuple[datetime | None, datetime]] = field(default_factory=dict)


def attempt(conn, username: str, ip: str) -> LoginAttempt:
    """Refuse a locked (account, address) pair or address, else count this attempt as a
    failure of each and commit, then slow down an account under attack: all before the slow
    password check, so guesses sent at once queue on the rows' locks, one count at a time,
    and no more than the limit of them are ever checked (none holds a lock while checked)."""
    cfg = current_app.config
    now = utcnow_naive()
    subjects = _locking_subjects(username, ip) + [("account", _account(username), None)]
    rows = repo.lock_throttle_rows(conn, [(scope, subject) for scope, subject, _ in subjects], now)
    for scope, subject, _ in subjects[:2]:
        locked_until = rows[(scope, subject)]["locked_until"]
        if locked_until and locked_until > now:
            conn.rollback()
            wait = seconds_until(locked_until, now)
            security_events.record("login_throttled", f"{scope} locked for {wait}s")
            raise _too_many("too many failed logins", wait)
    delay = slowdown_seconds(rows[("account", subjects[2][1])], now)
    counted = LoginAttempt(username, ip, 0)
    for scope, subject, limit in subjects:
        row = rows[(scope, subject)]
        failures, start = count_in_window(row["failures"], row["window_start"], now, cfg["LOGIN_WINDOW_SECONDS"])
        locked = None
        if limit is not None and failures >= limit:
            locked = now + timedelta(seconds=cfg["LOGIN_LOCK_SECONDS"] * (2 ** min(failures - limit, 6)))
            counted.locks_set[(scope, subject)] = (row["locked_until"], locked)
        if limit is None:
            counted.account_failures = failures
        repo.upsert_throttle(conn, scope, subject, failures, start, locked)
    conn.commit()
    _maybe_prune(conn)
    if delay > 0:
        time.sleep(delay)
    return counted


def slowdown_seconds(row: dict | None, now: datetime) -> float:
    cfg = current_app.config
    if row is None or not in_window(row["window_start"], now, cfg["LOGIN_WINDOW_SECONDS"]):
        return 0.0
    extra = row["failures"] - cfg["LOGIN_SLOWDOWN_AFTER"] + 1
    if extra <= 0:
        return 0.0
    return min(float(cfg["LOGIN_SLOWDOWN_MAX_SECONDS"]), extra * float(cfg["LOGIN_SLOWDOWN_STEP_SECONDS"]))


def failed(attempt: LoginAttempt) -> None:
    """The password was wrong: the attempt stays counted. The account's slow-down is a
    security event once, when its failures reach LOGIN_SLOWDOWN_AFTER."""
    if attempt.account_failures == current_app.config["LOGIN_SLOWDOWN_AFTER"]:
        security_events.record("login_slowdown", f"{attempt.account_failures} failed logins on account "
                                                 f"{_account(attempt.username)[:64]!r} from all addresses; "
                                                 "further attempts are slowed down")


def succeeded(conn, attempt: LoginAttempt) -> None:
    """The password was right: the (account, address) pair and the account start afresh, and
    the address's count of this attempt is taken back, with a lock that count brought about."""
    pair, (scope, address, limit) = _locking_subjects(attempt.username, attempt.ip)
    repo.clear_throttle(conn, "account_ip", pair[1])
    repo.clear_throttle(conn, "account", _account(attempt.username))
    before, set_by_it = attempt.locks_set.get((scope, address), (None, None))
    repo.refund_throttle(conn, scope, address, limit, set_by_it, before)
    conn.commit()


def signup_attempt(conn, ip: str) -> None:
    """Count a sign-up attempt of this address; over the limit -> 429 + Retry-After."""
    cfg = current_app.config
    _per_address(conn, "signup", ip, int(cfg["SIGNUP_MAX_PER_IP"]), int(cfg["SIGNUP_WINDOW_SECONDS"]),
                 "sign-ups", "too_many_signups", "signup_throttled")


def password_check_attempt(conn, ip: str) -> None:
    """Count a strength check of this address: the check needs no login and costs real CPU
    (zxcvbn), so an address gets PASSWORD_CHECKS_PER_MINUTE; over it -> 429 + Retry-After."""
    _per_address(conn, "password_check", ip, int(current_app.config["PASSWORD_CHECKS_PER_MINUTE"]),
                 PASSWORD_CHECK_WINDOW,
                 "password checks", "too_many_password_checks", "password_check_throttled")


def _per_address(conn, scope: str, ip: str, limit: int, window: int, what: str, code: str, event: str) -> None:
    row = repo.bump_counter(conn, scope, ip[:255], utcnow_naive(), window)
    conn.commit()
    _maybe_prune(conn)
    if row["failures"] > limit:
        wait = seconds_until(row["window_start"] + timedelta(seconds=window), utcnow_naive())
        security_events.record(event, f"{row['failures']} {what} from this address within {window}s")
        raise _too_many(f"too many {what} from your address", wait, code)


def _windows() -> dict[str, int]:
    cfg = current_app.config
    login = int(cfg["LOGIN_WINDOW_SECONDS"])
    return {"account": login, "account_ip": login, "ip": login,
            "signup": int(cfg["SIGNUP_WINDOW_SECONDS"]), "password_check": PASSWORD_CHECK_WINDOW}


def _maybe_prune(conn) -> None:
    """About once per PRUNE_ONE_IN counted events: drop every scope's dead rows, a scope per
    transaction. Housekeeping, never the request's answer: it runs after a login attempt was
    counted and its deletes lock rows in another order than an attempt does, so one that
    loses a lock race (deadlock, lock wait timeout) is dropped and logged; the next one
    prunes what it left."""
    if secrets.randbelow(PRUNE_ONE_IN):
        return
    now = utcnow_naive()
    for scope, window in _windows().items():
        try:
            repo.prune_throttle(conn, scope, now, window)
            conn.commit()
        except DatabaseError as exc:
            if getattr(exc, "errno", None) not in LOCK_RACE_ERRNOS:
                raise
            conn.rollback()
            log.warning("throttle prune dropped", extra={"scope": scope, "error": str(exc)})
            return
