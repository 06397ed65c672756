"""Apply ``database/migrations/NNN_name.sql`` in order, once each, recorded in
``schema_migrations``. Safe to run from many processes at once (a named lock serialises
them) and to re-run (applied files are skipped; a changed applied file is an error).

Usage: ``python database/migrate.py`` with DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD set.
"""
from __future__ import annotations

import hashlib
import logging
import re
import sys
from pathlib import Path

import mysql.connector

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
NAME_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
log = logging.getLogger("migrate")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.suffix == ".sql")
    for p in files:
        if not NAME_RE.match(p.name):
            raise SystemExit(f"bad migration file name: {p.name} (want NNN_name.sql)")
    numbers = [p.name[:3] for p in files]
    if len(set(numbers)) != len(numbers):
        raise SystemExit("two migrations share a number")
    return files


def statements(sql: str) -> list[str]:
    """Split at the delimiter at the end of a line: ';', or what a ``DELIMITER //`` line sets
    (as in the mariadb client) around a procedure body, whose own statements end in ';'."""
    out, buf, delimiter = [], [], ";"
    for line in sql.splitlines():
        text = line.strip()
        if text.startswith("--"):
            continue
        if text.upper().startswith("DELIMITER "):
            delimiter = text.split(None, 1)[1]
            continue
        if text.endswith(delimiter):
            buf.append(line.rstrip()[:-len(delimiter)])
            out.append("\n".join(buf).strip())
            buf = []
        else:
            buf.append(line)
    out.append("\n".join(buf).strip())
    return [s for s in out if s]


def migrate(conn_kwargs: dict, directory: Path = MIGRATIONS_DIR, out=print) -> list[str]:
    conn = mysql.connector.connect(**conn_kwargs)
    applied_now: list[str] = []
    try:
        cur = conn.cursor()
        cur.execute("SELECT GET_LOCK('streamvault_migrate', 120)")
        if cur.fetchone()[0] != 1:
            raise SystemExit("could not take the migration lock within 120 s")
        cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version CHAR(3) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,
            checksum CHAR(64) NOT NULL, applied_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""")
        cur.execute("SELECT version, name, checksum FROM schema_migrations")
        done = {v: (n, c) for v, n, c in cur.fetchall()}
        for path in migration_files(directory):
            version, text = path.name[:3], path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in done:
                if done[version][1] != checksum:
                    raise SystemExit(f"migration {path.name} changed after it was applied; add a new one instead")
                continue
            # DDL commits implicitly in MariaDB, so a failure mid-file is reported loudly
            # with the statement; files are kept small so a partial apply is easy to see.
            for stmt in statements(text):
                try:
                    cur.execute(stmt)
                except mysql.connector.Error as exc:
                    raise SystemExit(f"migration {path.name} failed: {exc}\n--- statement ---\n{stmt[:500]}")
            cur.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (version, path.name, checksum))
            conn.commit()
            applied_now.append(path.name)
            out(f"applied {path.name}")
        cur.execute("SELECT RELEASE_LOCK('streamvault_migrate')")
        cur.fetchall()
    finally:
        conn.close()
    if not applied_now:
        out("database schema up to date")
    return applied_now


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
    from svcommon.config import DB_SETTINGS, ConfigError, load
    from svcommon.db import connect_kwargs
    try:
        cfg = load(DB_SETTINGS)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    kw = connect_kwargs(cfg)
    kw["autocommit"] = False
    migrate(kw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
