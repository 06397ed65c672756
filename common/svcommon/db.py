"""MariaDB connection pool (mysql-connector-python) with one connection per request on ``g``.

The pool is created lazily on first use so a service can start (and report not-ready on
/readyz) before the database answers. A pooled connection idle for more than
PING_AFTER_IDLE_SECONDS is pinged with reconnect before use, so a restarted database costs
one retry, not a dead worker."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import mysql.connector
from mysql.connector import errors as myerrors
from mysql.connector import pooling
from flask import Flask, current_app, g

log = logging.getLogger("svcommon.db")
PING_AFTER_IDLE_SECONDS = 5.0


def connect_kwargs(cfg: dict) -> dict:
    # use_pure: the wheel's C extension needs OpenSSL 3.2; Debian bookworm has 3.0.
    return dict(host=cfg["DB_HOST"], port=int(cfg["DB_PORT"]), user=cfg["DB_USER"],
                password=cfg["DB_PASSWORD"], database=cfg["DB_NAME"], charset="utf8mb4",
                collation="utf8mb4_general_ci", autocommit=False, use_pure=True,
                connection_timeout=5, time_zone="+00:00")


class Database:
    """Flask extension: ``db = Database(); db.init_app(app)``; then ``db.conn()`` per request."""

    def __init__(self, app: Flask | None = None):
        # Keyed by connection settings, not by app: apps with the same database share one pool,
        # so a process that builds many apps (tests, CLI commands) never piles up connections.
        self._pools: dict[tuple, pooling.MySQLConnectionPool] = {}
        self._lock = threading.Lock()
        self._last_used: dict[int, float] = {}    # id(pooled connection) -> monotonic time returned
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["svcommon.db"] = self
        app.teardown_appcontext(self._teardown)

    def _pool(self) -> pooling.MySQLConnectionPool:
        cfg = current_app.config
        kwargs = connect_kwargs(cfg)
        size = int(cfg.get("DB_POOL_SIZE", 16))
        key = (tuple(sorted(kwargs.items())), size)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = pooling.MySQLConnectionPool(pool_name=f"sv{len(self._pools)}-{id(self)}"[:60], pool_size=size,
                                                   pool_reset_session=True, **kwargs)
                self._pools[key] = pool
            return pool

    def _checkout(self):
        conn = self._pool().get_connection()
        # A connection used moments ago is alive: pinging it would cost every request one
        # more round trip. One idle longer may have been dropped (server restart, timeouts).
        if time.monotonic() - self._last_used.get(id(conn._cnx), 0.0) > PING_AFTER_IDLE_SECONDS:
            try:
                conn.ping(reconnect=True, attempts=3, delay=1)
            except myerrors.Error:
                conn.close()
                raise
        return conn

    def _checkin(self, conn) -> None:
        """Back to the pool: rolled back if a transaction is open (a committed request costs
        no extra round trip); the pool then resets the session (named locks, variables)."""
        try:
            if conn.in_transaction:
                conn.rollback()   # anything not explicitly committed is discarded
        except myerrors.Error:
            pass
        finally:
            self._last_used[id(conn._cnx)] = time.monotonic()
            conn.close()

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
        conn = mysql.connector.connect(**connect_kwargs(current_app.config))
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            conn.close()


def query(conn, sql: str, params: tuple | dict = (), one: bool = False):
    """Run a SELECT and return dict rows (or one row / None)."""
    cur = conn.cursor(dictionary=True)
    try:
        cur.execute(sql, params)
        rows = cur.fetchall()
    finally:
        cur.close()
    if one:
        return rows[0] if rows else None
    return rows


def execute(conn, sql: str, params: tuple | dict = ()) -> int:
    """Run a write; returns the affected row count (lastrowid is rarely needed: ids are ours)."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return cur.rowcount
    finally:
        cur.close()


IntegrityError = myerrors.IntegrityError
DatabaseError = myerrors.Error
