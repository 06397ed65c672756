"""MariaDB connection pool (mysql-connector-python) with one connection per request on ``g``.

The pool is created lazily on first use so a service can start (and report not-ready on
/readyz) before the database answers.

A connection the server dropped is never handed out again: (1) at checkout an idle
connection whose socket has something to read is dead (the server sends nothing unasked;
a killed connection or a restarting server leaves an error packet and/or end of file), which
costs a poll() system call, no round trip; (2) a query that fails on the connection itself
(lost, killed, server gone) flags it and the check-in closes it; (3) one idle for more than
PING_AFTER_IDLE_SECONDS is pinged with reconnect before use. So a restarted database costs
at most the requests that were running at that moment, not every request until traffic
pauses.

A database that cannot be reached answers requests 503 ``database_unavailable`` with
``Retry-After`` (the app-level handler ``init_app`` registers), never a 500: a connection
attempt times out after ``connection_timeout`` (5 s; the driver does not apply it to a
statement's reads, measured: a 7-s ``SELECT SLEEP(7)`` completes, and statements may wait on
locks for up to 30 s on purpose), and after a connection attempt failed the pool fails further
checkouts at once for ``DOWN_SECONDS`` while letting one checkout at a time try again (a
stopped server that still accepts TCP would otherwise hold every request thread for the
full timeout). The first success closes that window, so service resumes as soon as the
database is back.

Pooled connections are neither pinged at checkout nor reset at check-in (the Pool below, not
mysql-connector's pool: its ping and COM_RESET_CONNECTION plus four re-sent session SETs were
six round trips per request, more than a key request's whole work), and a statement's cursor
is made without the driver's ``cursor()``, which pings the server every time (``_cursor``). Not resetting is safe because nothing relies on it (audited for every service): every
connection has the same session settings from ``connect_kwargs`` and no code changes them;
no code uses user variables (``@x``) or temporary tables; an open transaction is rolled back at
check-in; every named lock (GET_LOCK) is released explicitly in a ``finally`` by its owner.
As a safety net a connection that ran GET_LOCK is still reset at check-in (its locks then
cannot outlive the request even if a release were missed)."""
from __future__ import annotations

import json
import logging
import select
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Iterator

import mysql.connector
from mysql.connector import errors as myerrors
from mysql.connector.connection import MySQLConnection
from mysql.connector.cursor import MySQLCursor, MySQLCursorDict
from flask import Flask, current_app, g

from . import errors

log = logging.getLogger("svcommon.db")
PING_AFTER_IDLE_SECONDS = 5.0
NAMED_LOCK_FLAG = "_sv_took_named_lock"     # set on a pooled connection by query()/execute()
IDLE_SINCE = "_sv_idle_since"               # monotonic time a pooled connection was returned
BROKEN_FLAG = "_sv_broken"                  # set by query()/execute()/call() when the link failed
# Errors that mean the connection itself is gone (not a refused statement): mysql-connector's
# OperationalError/InterfaceError (2006 gone away, 2013 lost, 2055, server shutdown 1053 ...)
# and MariaDB's 1927 "connection was killed", which it maps to a plain DatabaseError.
LINK_ERRORS = (myerrors.OperationalError, myerrors.InterfaceError)
KILLED_ERRNO = 1927
POOL_WAIT_SECONDS = 10.0
DOWN_SECONDS = 1.0          # after a failed connect, checkouts fail at once this long
RETRY_AFTER_SECONDS = 5     # what a client is told to wait while the database is unreachable
PING_TIMEOUT_SECONDS = 2    # /readyz's own connection attempt


def connect_kwargs(cfg: dict) -> dict:
    # use_pure: this release's C extension needs OpenSSL 3.2 (Debian bookworm has 3.0). 9.7.0's
    # needs 3.0 and measured 0.64 vs 0.90 ms per key-release call, but a streaming-svc worker
    # running it crashed with SIGSEGV once in a full test run (2026-12-04), so it is not used.
    return dict(host=cfg["DB_HOST"], port=int(cfg["DB_PORT"]), user=cfg["DB_USER"],
                password=cfg["DB_PASSWORD"], database=cfg["DB_NAME"], charset="utf8mb4",
                collation="utf8mb4_general_ci", autocommit=False, use_pure=True,
                connection_timeout=5, time_zone="+00:00")


class Pool:
    """Open connections to one database, the most recently returned handed out first, at most
    ``size`` in use; a caller waits up to POOL_WAIT_SECONDS for one. (mysql-connector's own
    pool pings every connection at checkout and resets it at check-in: two more round trips
    per request than needed, see the module docstring.)"""

    def __init__(self, kwargs: dict, size: int):
        self.kwargs = kwargs
        self._idle: list = []
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._down_until = 0.0      # monotonic; > now: the database was just found unreachable
        self._down_error: str = ""

    def get(self):
        self._fail_fast()
        if not self._free.acquire(timeout=POOL_WAIT_SECONDS):
            raise myerrors.PoolError(f"no free database connection within {POOL_WAIT_SECONDS:g} s")
        try:
            while True:
                with self._lock:
                    cnx = self._idle.pop() if self._idle else None
                if cnx is None:
                    return self._connect()
                if not _dropped(cnx):
                    return cnx
                _close_quietly(cnx)       # the server closed it while it was idle: try the next
        except BaseException:
            self._free.release()
            raise

    def _fail_fast(self) -> None:
        """While the database is known unreachable, refuse at once; once the window is over,
        let exactly one caller through to try (the window is extended over its attempt)."""
        with self._lock:
            now = time.monotonic()
            if now < self._down_until:
                raise myerrors.OperationalError(f"database unreachable ({self._down_error})", errno=2003)
            if self._down_until:
                self._down_until = now + float(self.kwargs.get("connection_timeout") or 5) + DOWN_SECONDS

    def _connect(self):
        try:
            cnx = mysql.connector.connect(**self.kwargs)
        except myerrors.Error as exc:
            if link_failed(exc):
                self.mark_down(exc)
            raise
        with self._lock:
            self._down_until = 0.0
        return cnx

    def mark_down(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = time.monotonic() + DOWN_SECONDS
            self._down_error = f"{exc.__class__.__name__}: {exc}"[:200]

    def put(self, cnx, broken: bool = False) -> None:
        """``broken``: the link failed during use (closed, not pooled: one killed connection
        says nothing of the others). A healthy return proves the database reachable."""
        try:
            if broken:
                _close_quietly(cnx)
            else:
                setattr(cnx, IDLE_SINCE, time.monotonic())
                with self._lock:
                    self._idle.append(cnx)
                    self._down_until = 0.0
        finally:
            self._free.release()


def _dropped(cnx) -> bool:
    """An idle connection the server has closed: its socket is readable (an error packet or end
    of file; the server never sends anything unasked). One poll() call, no round trip. A
    connection without a plain socket to look at (not mysql-connector's pure Python one) is
    assumed alive: the ping after PING_AFTER_IDLE_SECONDS and BROKEN_FLAG still catch it."""
    sock = getattr(getattr(cnx, "_socket", None), "sock", None)
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):       # closed or unusable socket
        return True


def _close_quietly(cnx) -> None:
    try:
        cnx.close()
    except (myerrors.Error, OSError):
        pass


def link_failed(exc: BaseException) -> bool:
    """The error says the connection itself is unusable (not that a statement was refused)."""
    return isinstance(exc, LINK_ERRORS) or getattr(exc, "errno", None) == KILLED_ERRNO


class Database:
    """Flask extension: ``db = Database(); db.init_app(app)``; then ``db.conn()`` per request."""

    def __init__(self, app: Flask | None = None):
        # Keyed by connection settings, not by app: apps with the same database share one pool,
        # so a process that builds many apps (tests, CLI commands) never piles up connections.
        self._pools: dict[tuple, Pool] = {}
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["svcommon.db"] = self
        app.teardown_appcontext(self._teardown)
        app.register_error_handler(myerrors.Error, _database_error)

    def _pool(self) -> Pool:
        cfg = current_app.config
        kwargs = connect_kwargs(cfg)
        size = int(cfg.get("DB_POOL_SIZE", 16))
        key = (tuple(sorted(kwargs.items())), size)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = Pool(kwargs, size)
            return pool

    def _checkout(self):
        pool = self._pool()
        conn = pool.get()
        conn._sv_pool = pool
        # A connection used moments ago is alive: pinging it would cost every request one
        # more round trip. One idle longer may have been dropped (server restart, timeouts).
        if time.monotonic() - getattr(conn, IDLE_SINCE, time.monotonic()) > PING_AFTER_IDLE_SECONDS:
            try:
                conn.ping(reconnect=True, attempts=3, delay=1)
            except myerrors.Error:
                pool.put(conn, broken=True)
                raise
        return conn

    def _checkin(self, conn) -> None:
        """Back to the pool: rolled back if a transaction is open (a committed request costs
        no extra round trip); reset only if it took a named lock (module docstring). A
        connection that failed during the request (BROKEN_FLAG) or fails either step here is
        closed, not pooled."""
        broken = getattr(conn, BROKEN_FLAG, False)
        if not broken:
            try:
                if conn.in_transaction:
                    conn.rollback()   # anything not explicitly committed is discarded
                if getattr(conn, NAMED_LOCK_FLAG, False):
                    conn.reset_session()   # COM_RESET_CONNECTION: releases every named lock
                    setattr(conn, NAMED_LOCK_FLAG, False)
            except myerrors.Error:
                broken = True
        conn._sv_pool.put(conn, broken)

    def conn(self):
        """The request's connection (checked out once, returned at teardown)."""
        if "db_conn" not in g:
            g.db_conn = self._checkout()
        return g.db_conn

    @contextmanager
    def standalone(self) -> Iterator:
        """A connection outside request scope (workers, start-up tasks)."""
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    def _teardown(self, exc: BaseException | None) -> None:
        conn = g.pop("db_conn", None)
        if conn is not None:
            self._checkin(conn)

    def ping(self) -> None:
        """/readyz: a fresh connection and one round trip, within PING_TIMEOUT_SECONDS."""
        conn = mysql.connector.connect(**{**connect_kwargs(current_app.config),
                                          "connection_timeout": PING_TIMEOUT_SECONDS})
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            conn.close()


def unavailable(exc: BaseException) -> bool:
    """The database cannot serve right now (down, unreachable, restarting, out of
    connections), as opposed to refusing a statement: worth a retry later."""
    return link_failed(exc) or isinstance(exc, myerrors.PoolError) or getattr(exc, "errno", None) in (
        1040, 1053, 1205, 1213)   # too many connections, shutting down, lock wait timeout, deadlock


def _database_error(exc: myerrors.Error):
    """The one place a database failure becomes an answer: unreachable → 503
    ``database_unavailable`` + Retry-After; anything else is a bug → the usual 500."""
    if not unavailable(exc):
        return errors.internal_error(exc)
    log.error("database unavailable", extra={"error": f"{exc.__class__.__name__}: {exc}"[:300]})
    return errors.error_response(503, "database_unavailable",
                                 f"The database is unavailable; retry in {RETRY_AFTER_SECONDS} s.",
                                 {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})


def _note_named_lock(conn, sql: str) -> None:
    if "GET_LOCK" in sql.upper():
        setattr(conn, NAMED_LOCK_FLAG, True)


@contextmanager
def _on_link(conn) -> Iterator[None]:
    """Flags the connection (BROKEN_FLAG) when a statement fails because the link is gone, so
    its check-in closes it instead of pooling it: mysql-connector leaves such a connection
    looking healthy (``in_transaction`` is whatever the last OK packet said)."""
    try:
        yield
    except myerrors.Error as exc:
        if link_failed(exc):
            setattr(conn, BROKEN_FLAG, True)
        raise


def _cursor(conn, dictionary: bool = False):
    """A cursor on ``conn`` without the round trip ``conn.cursor()`` makes: mysql-connector's
    ``cursor()`` pings the server first (``is_connected()``: COM_PING) on every call, which
    made each statement two round trips (measured in the key endpoint's profile: the ping
    took as long as the statement). A dead link fails the statement itself instead, which
    ``_on_link`` flags. Any other connection type keeps its own ``cursor()``."""
    if isinstance(conn, MySQLConnection):
        conn.handle_unread_result()
        return (MySQLCursorDict if dictionary else MySQLCursor)(conn)
    return conn.cursor(dictionary=dictionary)


def query(conn, sql: str, params: tuple | dict = (), one: bool = False):
    """Run a SELECT and return dict rows (or one row / None)."""
    _note_named_lock(conn, sql)
    with _on_link(conn):
        cur = _cursor(conn, dictionary=True)
        try:
            cur.execute(sql, params)
            rows = cur.fetchall()
        finally:
            cur.close()
    if one:
        return rows[0] if rows else None
    return rows


@dataclass(frozen=True)
class JsonRow:
    """A hot lookup's row read as ONE column, a JSON object of its columns. mysql-connector's
    pure-Python client reads every column's definition packet (two socket reads) and parses
    it on every query: 20 constant columns took 0.37 ms from Python against 0.11 ms for one
    on the bench machine (2026-12-06; bench/results/delivery-p5.md). The values come back typed as a
    column-per-column read gives them: ``binary`` columns (sent as HEX()) as bytes,
    ``datetimes`` parsed, ``floats`` as float (JSON writes a DOUBLE 0 as 0), the rest as JSON
    has them (integers, strings, NULL).

    ``columns``: "expr AS name" or "alias.name" items, as in a SELECT list."""
    columns: tuple[str, ...]
    binary: frozenset[str] = frozenset()
    datetimes: frozenset[str] = frozenset()
    floats: frozenset[str] = frozenset()

    @classmethod
    def of(cls, columns: str, binary=(), datetimes=(), floats=()) -> "JsonRow":
        return cls(tuple(c.strip() for c in columns.split(",")), frozenset(binary), frozenset(datetimes),
                   frozenset(floats))

    @cached_property
    def names(self) -> list[str]:
        return [c.split(" AS ")[-1].split(".")[-1] for c in self.columns]

    @cached_property
    def json_object(self) -> str:
        """The SQL expression, made once: JSON_OBJECT('name', expr, ...)."""
        parts = []
        for name, col in zip(self.names, self.columns):
            expr = col.split(" AS ")[0]
            parts.append(f"'{name}', {f'HEX({expr})' if name in self.binary else expr}")
        return f"JSON_OBJECT({', '.join(parts)})"

    def decode(self, text: str) -> dict:
        row = json.loads(text)
        for name in self.binary:
            if row[name] is not None:
                row[name] = bytes.fromhex(row[name])
        for name in self.datetimes:
            if row[name] is not None:
                row[name] = datetime.fromisoformat(row[name])
        for name in self.floats:
            if row[name] is not None:
                row[name] = float(row[name])
        return row

    def one(self, conn, from_where: str, params: tuple = ()) -> dict | None:
        """``SELECT <the object> FROM ...``: the one row decoded, or None."""
        row = query(conn, f"SELECT {self.json_object} AS row_json {from_where}", params, one=True)
        return None if row is None else self.decode(row["row_json"])


def execute(conn, sql: str, params: tuple | dict = ()) -> int:
    """Run a write; returns the affected row count (lastrowid is rarely needed: ids are ours)."""
    _note_named_lock(conn, sql)
    with _on_link(conn):
        cur = _cursor(conn)
        try:
            cur.execute(sql, params)
            return cur.rowcount
        finally:
            cur.close()


def call(conn, procedure: str, params: tuple = ()) -> list[dict]:
    """CALL a stored procedure (one round trip); its first result set as dict rows."""
    with _on_link(conn):
        cur = _cursor(conn, dictionary=True)
        try:
            cur.execute(f"CALL {procedure}({', '.join(['%s'] * len(params))})", params)
            rows = cur.fetchall()
            while cur.nextset():        # the CALL's own status comes after the rows
                pass
        finally:
            cur.close()
    return rows


def lock_for_count(conn, sql: str, params: tuple) -> dict | None:
    """Take the lock that serialises a check-then-insert under a limit (``sql``: a ``SELECT …
    FOR UPDATE`` of the owner's row, e.g. the user's) in a new transaction: the one so far is
    committed first (call before any write). Under REPEATABLE READ a plain read sees the
    snapshot of its transaction's first plain read, so a count read after waiting for the lock
    would miss what the lock's previous holder committed meanwhile, and opens racing the same
    account all passed the limit (10 playback sessions under a limit of 3: test_playback_api).
    Returns the locked row."""
    conn.commit()
    return query(conn, sql, params, one=True)


IntegrityError = myerrors.IntegrityError
DatabaseError = myerrors.Error
