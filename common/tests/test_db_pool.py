"""The connection pool (svcommon.db) against the real MariaDB: connections are reused without a
session reset (no round trips at checkout or check-in), yet a named lock never outlives the
request that took it, a failed connection is closed instead of pooled, and one the server
dropped (KILL, restart) is never handed out again."""
from __future__ import annotations

import time

import mysql.connector
import pytest
from flask import Flask

from svcommon import db as dbmod
from svcommon.db import Database, connect_kwargs, query


def _app(service_config, **cfg) -> tuple[Flask, Database]:
    app = Flask(__name__)
    app.config.update(service_config, DB_POOL_SIZE=2, **cfg)
    return app, Database(app)


def _questions(conn) -> int:
    return int(query(conn, "SHOW SESSION STATUS LIKE 'Questions'", one=True)["Value"])


def test_a_pooled_connection_is_reused_without_reset_round_trips(service_config):
    app, db = _app(service_config)
    with app.app_context():
        with db.standalone() as conn:
            query(conn, "SELECT 1 AS one")
            before = _questions(conn)
            first = conn
        with db.standalone() as conn:
            assert conn is first
            # Only the SHOW itself ran since: no reset, no re-sent session SETs in between.
            assert _questions(conn) == before + 1
            assert query(conn, "SELECT @@session.time_zone AS tz", one=True)["tz"] == "+00:00"


def test_a_named_lock_does_not_outlive_its_request(service_config):
    app, db = _app(service_config)
    other = mysql.connector.connect(**connect_kwargs(service_config))
    try:
        with app.app_context():
            with db.standalone() as conn:
                assert query(conn, "SELECT GET_LOCK('svtest_pool_lock', 0) AS got", one=True)["got"] == 1
                held = conn
                # never released by its holder (a bug elsewhere): the check-in resets this connection
            with db.standalone() as conn:
                assert conn is held          # still pooled, not closed
                assert query(conn, "SELECT IS_USED_LOCK('svtest_pool_lock') AS owner", one=True)["owner"] is None
        cur = other.cursor()
        cur.execute("SELECT GET_LOCK('svtest_pool_lock', 0)")
        assert cur.fetchone()[0] == 1
    finally:
        other.close()


def test_a_broken_connection_is_closed_not_pooled(service_config):
    app, db = _app(service_config)
    with app.app_context():
        with db.standalone() as conn:
            conn.cmd_query("START TRANSACTION")
            conn.close()                     # the rollback at check-in fails: not pooled again
            dead = conn
        with db.standalone() as conn:
            assert conn is not dead
            assert query(conn, "SELECT 1 AS one", one=True)["one"] == 1


def _kill(service_config, conn) -> None:
    """KILL ``conn`` from another connection, as a server restart or an admin would drop it,
    and wait until the server has let it go."""
    cid = int(conn.connection_id)
    other = mysql.connector.connect(**connect_kwargs(service_config))
    try:
        cur = other.cursor()
        cur.execute(f"KILL CONNECTION {cid}")
        deadline = time.monotonic() + 10
        while True:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (cid,))
            if cur.fetchone()[0] == 0:
                break
            assert time.monotonic() < deadline, "the killed connection did not go away"
            time.sleep(0.05)
    finally:
        other.close()


@pytest.fixture
def no_idle_ping(monkeypatch):
    """Whatever the machine's speed, the checkouts below count as 'used moments ago' (no ping)."""
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 3600.0)


def test_a_connection_killed_while_idle_is_not_handed_out_again(service_config, no_idle_ping):
    app, db = _app(service_config)
    with app.app_context():
        with db.standalone() as conn:
            assert query(conn, "SELECT 1 AS one", one=True)["one"] == 1
            killed = conn
        _kill(service_config, killed)
        for _ in range(2):          # back to back, as a busy service's requests come
            with db.standalone() as conn:
                assert conn is not killed
                assert query(conn, "SELECT 1 AS one", one=True)["one"] == 1


def test_a_connection_lost_during_a_request_is_closed_not_pooled(service_config, no_idle_ping, monkeypatch):
    monkeypatch.setattr(dbmod, "_dropped", lambda cnx: False, raising=False)   # only the failed query can tell
    app, db = _app(service_config)
    with app.app_context():
        with db.standalone() as conn:
            lost = conn
            _kill(service_config, conn)
            with pytest.raises(dbmod.DatabaseError):
                query(conn, "SELECT 1 AS one")
            assert not conn.in_transaction      # so only the failure itself says it is broken
        for _ in range(2):
            with db.standalone() as conn:
                assert conn is not lost
                assert query(conn, "SELECT 1 AS one", one=True)["one"] == 1


def test_an_unreachable_database_is_a_quick_503_and_a_retry_reaches_it_again(service_config):
    """Pointed at a port nothing listens on: 503 database_unavailable + Retry-After from the
    shared handler; for DOWN_SECONDS further checkouts are refused without trying (no thread
    waits out a timeout); after that one caller tries again, and the real database serves."""
    import socket
    from svcommon import errors
    with socket.socket() as s:                     # a free port, closed again: refused at once
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    app, db = _app(service_config, DB_PORT=closed_port)
    errors.init_app(app)

    @app.get("/api/x")
    def x():
        return {"one": query(db.conn(), "SELECT 1 AS one", one=True)["one"]}

    @app.get("/api/bad")
    def bad():
        query(db.conn(), "SELECT no_such_column FROM no_such_table")
    client = app.test_client()
    r = client.get("/api/x")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5" and r.headers["Cache-Control"] == "no-store"
    assert r.get_json()["code"] == "database_unavailable" and r.get_json()["error"]
    pool = next(iter(db._pools.values()))
    with app.app_context():
        with pytest.raises(mysql.connector.errors.OperationalError, match="database unreachable"):
            pool.get()                             # inside the window: refused without a try
        time.sleep(dbmod.DOWN_SECONDS + 0.1)
        with pytest.raises(mysql.connector.errors.InterfaceError):
            pool.get()                             # after it: a real attempt (refused again)
    # The database back (here: the real one's settings): the first request is served.
    pool.kwargs["port"] = int(service_config["DB_PORT"])
    time.sleep(dbmod.DOWN_SECONDS + 0.1)
    assert client.get("/api/x").get_json() == {"one": 1}
    # Any other database error is still a bug: 500, no SQL detail.
    r = client.get("/api/bad")
    assert r.status_code == 500 and r.get_json()["code"] == "internal_error"


def _status(conn, name: str) -> int:
    return int(query(conn, f"SHOW SESSION STATUS LIKE '{name}'", one=True)["Value"])


def test_a_statement_is_one_round_trip(service_config):
    """mysql-connector's ``cursor()`` pings the server each time (COM_PING, counted by
    Com_admin_commands): svcommon.db's statements make their cursors without it."""
    app, db = _app(service_config)
    with app.app_context(), db.standalone() as conn:
        before = _status(conn, "Com_admin_commands")
        for _ in range(5):
            query(conn, "SELECT 1 AS one")
            dbmod.execute(conn, "DO 1")
        assert _status(conn, "Com_admin_commands") == before
        conn.cursor().close()          # the driver's own cursor() does ping: the test can fail
        assert _status(conn, "Com_admin_commands") == before + 1
