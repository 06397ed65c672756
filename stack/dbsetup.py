"""Create the database and its user (as root over the private socket), then migrate."""
from __future__ import annotations

import sys
import time

import mysql.connector

from .layout import ROOT, Stack

sys.path.insert(0, str(ROOT / "database"))
from migrate import migrate  # noqa: E402


def root_kwargs(stack: Stack, database: str | None = None) -> dict:
    kw = dict(unix_socket=str(stack.mariadb_socket), user="root", password="", charset="utf8mb4",
              collation="utf8mb4_general_ci", use_pure=True)
    if database:
        kw["database"] = database
    return kw


def wait_for_mariadb(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            mysql.connector.connect(**root_kwargs(stack)).close()
            return
        except mysql.connector.Error:
            if time.monotonic() > deadline:
                raise SystemExit(f"MariaDB did not answer on {stack.mariadb_socket} within {timeout:.0f} s")
            time.sleep(0.3)


def ensure_database(stack: Stack, db_name: str, password: str) -> None:
    conn = mysql.connector.connect(**root_kwargs(stack))
    try:
        cur = conn.cursor()
        cur.execute("SELECT GET_LOCK('streamvault_bootstrap', 60)")
        cur.fetchall()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        for host in ("127.0.0.1", "localhost"):
            cur.execute("CREATE USER IF NOT EXISTS 'streamvault'@%s IDENTIFIED BY %s", (host, password))
            cur.execute("ALTER USER 'streamvault'@%s IDENTIFIED BY %s", (host, password))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{db_name}`.* TO 'streamvault'@%s", (host,))
        cur.execute("SELECT RELEASE_LOCK('streamvault_bootstrap')")
        cur.fetchall()
    finally:
        conn.close()


def setup(stack: Stack, password: str, db_name: str = "streamvault", out=print) -> None:
    wait_for_mariadb(stack)
    ensure_database(stack, db_name, password)
    migrate(root_kwargs(stack, db_name), out=out)
