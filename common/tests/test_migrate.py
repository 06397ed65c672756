"""Migrations apply once, in order, are recorded, and a changed applied file is refused."""
from __future__ import annotations

import mysql.connector
import pytest


def test_real_migrations_apply_once(scratch_db):
    from migrate import migrate, migration_files
    first = migrate(scratch_db, out=lambda m: None)
    assert first == [p.name for p in migration_files()]
    assert migrate(scratch_db, out=lambda m: None) == []
    conn = mysql.connector.connect(**scratch_db)
    try:        # closed whatever happens: an open read of the schema would block the DROP DATABASE
        cur = conn.cursor()
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [p.name[:3] for p in migration_files()]
        cur.execute("SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'")
        for table, engine, collation in cur.fetchall():
            assert engine == "InnoDB" and collation.startswith("utf8mb4"), table
    finally:
        conn.close()


def test_changed_applied_migration_is_refused(scratch_db, tmp_path):
    from migrate import migrate
    (tmp_path / "001_one.sql").write_text("CREATE TABLE t1 (id INT PRIMARY KEY);\n")
    assert migrate(scratch_db, tmp_path, out=lambda m: None) == ["001_one.sql"]
    (tmp_path / "001_one.sql").write_text("CREATE TABLE t1 (id BIGINT PRIMARY KEY);\n")
    with pytest.raises(SystemExit, match="changed after it was applied"):
        migrate(scratch_db, tmp_path, out=lambda m: None)


def test_bad_file_name_is_refused(scratch_db, tmp_path):
    from migrate import migrate
    (tmp_path / "1_oops.sql").write_text("SELECT 1;\n")
    with pytest.raises(SystemExit, match="bad migration file name"):
        migrate(scratch_db, tmp_path, out=lambda m: None)
