"""``make backup`` / ``make restore`` for a native stack (docs/operations.md "Backup and restore").

    python -m stack.backup backup [--stack dev] [--out DIR] [--passphrase-file F | --no-secrets]
    python -m stack.backup restore BACKUP_DIR [--stack dev] [--passphrase-file F] [--force]

A backup is one folder, ``streamvault-<stack>-<UTC time>/``: ``manifest.json`` (format and
version, what is inside with sizes and SHA-256), ``database.sql`` (mariadb-dump
--single-transaction of the application database, taken first), ``objects/`` +
``objects.json`` (every object of the bucket, copied second, file_svc.bucket_backup) and
``secrets.enc`` (the secrets the data needs, encrypted under the operator's passphrase).
It is written as ``….partial`` and renamed only when complete.

Restore goes onto an empty stack only (``--force`` empties it first), checks everything it
will write before writing, and on any failure empties the stack again: nothing is left
half-restored. It starts the stack's MariaDB and S3 itself when they are not running and
refuses while ``make up`` serves that stack.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import mysql.connector

from . import components, dbsetup
from .environment import stack_env
from .layout import DEV, ROOT, TEST, Stack
from .backup_secrets import (DATA_SECRETS, PASSPHRASE_ENV, open_secrets, passphrase, seal_secrets,
                             write_secrets)
from .secrets import load_or_create, read_env_file

sys.path.insert(0, str(ROOT / "file-svc"))
from file_svc import bucket_backup  # noqa: E402
from file_svc.bucket_backup import BackupError  # noqa: E402
from file_svc.s3client import S3Store  # noqa: E402
from file_svc.settings import SETTINGS as FILE_SETTINGS  # noqa: E402

FORMAT = "streamvault-backup"
FORMAT_VERSION = 1
DB_NAME = "streamvault"
DUMP = "database.sql"
SECRETS_FILE = "secrets.enc"
STACKS = {"dev": DEV, "test": TEST, TEST.name: TEST}


def say(message: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {message}", flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


# ---- the stack's MariaDB and S3 -------------------------------------------------------------
def s3_store(stack: Stack, secrets: dict) -> S3Store:
    """file-svc's S3 client with file-svc's settings (their defaults: timeouts, attempts) as
    the stack gives them."""
    from svcommon.config import load as load_settings
    env = stack_env(stack, secrets)
    return S3Store(load_settings(FILE_SETTINGS, environ={k: str(v) for k, v in env.items()}))


def _answers(stack: Stack, patience: float = 10) -> tuple[bool, bool]:
    """Whether the stack's MariaDB and S3 answer (each given ``patience`` seconds: a loaded
    machine can be slow to accept a connection)."""
    import requests

    def db() -> bool:
        mysql.connector.connect(**dbsetup.root_kwargs(stack), connection_timeout=2).close()
        return True

    def s3() -> bool:
        requests.get(stack.s3_endpoint, timeout=2)
        return True
    out = []
    for probe, errors in ((db, mysql.connector.Error), (s3, requests.RequestException)):
        deadline = time.monotonic() + patience
        while True:
            try:
                out.append(probe())
                break
            except errors:
                if time.monotonic() > deadline:
                    out.append(False)
                    break
                time.sleep(0.5)
    return out[0], out[1]


@contextmanager
def infrastructure(stack: Stack, secrets: dict):
    """The stack's MariaDB and S3 for a restore: used as they are when they answer, else
    started here (as ``make up`` would) and stopped afterwards."""
    components.mariadb_prepare(stack)
    components.seaweed_prepare(stack, secrets)
    db_up, s3_up = _answers(stack, patience=3)
    started: list[subprocess.Popen] = []
    try:
        for up, name, argv in ((db_up, "mariadb", components.mariadb_command(stack)),
                               (s3_up, "s3", components.seaweed_command(stack))):
            if not up:
                say(f"starting the stack's {name} for the restore")
                with open(stack.var / "logs" / f"restore-{name}.log", "ab") as log:
                    started.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                                    start_new_session=True))
        dbsetup.wait_for_mariadb(stack)
        components.wait_http(stack.s3_endpoint, timeout=60)
        yield
    finally:
        for proc in reversed(started):
            components.stop_child(proc, grace=30)


def _root(stack: Stack, database: str | None = None):
    return mysql.connector.connect(**dbsetup.root_kwargs(stack, database), autocommit=True)


def database_rows(stack: Stack) -> int:
    """Rows in the application's tables (schema_migrations aside); 0 when there is no database."""
    conn = _root(stack)
    try:
        cur = conn.cursor()
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'", (DB_NAME,))
        total = 0
        for (table,) in cur.fetchall():
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM `{DB_NAME}`.`{table}`)")
            total += cur.fetchone()[0]
        return total
    finally:
        conn.close()


def recreate_database(stack: Stack, password: str) -> None:
    conn = _root(stack)
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
    finally:
        conn.close()
    dbsetup.ensure_database(stack, DB_NAME, password)


def _client_argv(tool: str, stack: Stack) -> list[str]:
    return [tool, "--no-defaults", f"--socket={stack.mariadb_socket}", "--user=root",
            "--default-character-set=utf8mb4"]


# ---- backup --------------------------------------------------------------------------------
@dataclass
class BackupResult:
    folder: Path
    manifest: dict


def backup(stack: Stack, out: Path, phrase: str | None, include_secrets: bool = True) -> BackupResult:
    secrets = read_env_file(stack.var / "secrets.env")
    if not secrets:
        raise BackupError(f"{stack.var / 'secrets.env'} is missing: is `{stack.name}` a stack that has run?")
    if include_secrets and not phrase:
        raise BackupError(f"a passphrase is needed to encrypt the secrets into the backup ({PASSPHRASE_ENV}, "
                          "--passphrase-file or a terminal prompt), or --no-secrets if you keep "
                          f"{stack.var / 'secrets.env'} yourself")
    db_up, s3_up = _answers(stack)
    if not (db_up and s3_up):
        raise BackupError(f"the `{stack.name}` stack's {'MariaDB' if not db_up else 'S3'} does not answer: "
                          "a backup is taken from the running suite (make up)")
    created = datetime.now(timezone.utc)
    final = out / f"streamvault-{stack.name}-{created:%Y%m%dT%H%M%SZ}"
    partial = final.with_name(final.name + ".partial")
    if final.exists() or partial.exists():
        raise BackupError(f"{final} exists already")
    partial.mkdir(parents=True)
    try:
        # 1. The database first: one consistent snapshot (InnoDB, one transaction). Every object
        #    a row of it names was written before that row was committed, so it exists below.
        say("database: dumping (mariadb-dump --single-transaction)")
        with open(partial / DUMP, "wb") as f:
            proc = subprocess.run(_client_argv("mariadb-dump", stack)
                                  + ["--single-transaction", "--routines", "--triggers", "--hex-blob",
                                     "--skip-lock-tables", DB_NAME], stdout=f, stderr=subprocess.PIPE)
        if proc.returncode:
            raise BackupError(f"mariadb-dump failed: {proc.stderr.decode(errors='replace').strip()}")
        db_info = {"file": DUMP, "bytes": (partial / DUMP).stat().st_size, "sha256": sha256_file(partial / DUMP)}
        say(f"database: {db_info['bytes'] / 1e6:.1f} MB")
        # 2. Then the objects.
        say("objects: copying the bucket")
        objects = bucket_backup.save(s3_store(stack, secrets), partial, progress=say)
        # 3. The secrets the data needs, encrypted.
        if include_secrets:
            values = {k: secrets[k] for k in DATA_SECRETS if k in secrets}
            (partial / SECRETS_FILE).write_text(json.dumps(seal_secrets(values, phrase)))
            (partial / SECRETS_FILE).chmod(0o600)
            say(f"secrets: {', '.join(values)} encrypted under the passphrase")
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": created.isoformat(),
            "source_stack": stack.name, "database": db_info,
            "objects": {"file": bucket_backup.MANIFEST, "count": objects["count"], "bytes": objects["bytes"],
                        "vanished": len(objects["vanished"])},
            "secrets": {"included": include_secrets, "file": SECRETS_FILE if include_secrets else None,
                        "names": sorted(DATA_SECRETS)},
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"backup complete: {final}")
    return BackupResult(final, manifest)


# ---- restore -------------------------------------------------------------------------------
def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder}: not a complete StreamVault backup (manifest.json: {exc})")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: not a StreamVault backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{folder}: backup format {manifest.get('format_version')} is not supported by this "
                          f"version (it reads format {FORMAT_VERSION})")
    return manifest


def check_secrets_open_data(stack: Stack, values: dict[str, str]) -> None:
    """The media master key opens a video's sealed content secret: restored segments will play."""
    from svcommon.media_crypto import ContentSealer
    conn = _root(stack, DB_NAME)
    try:
        cur = conn.cursor()
        cur.execute("SELECT video_id, content_secret_enc FROM video_media WHERE content_secret_enc IS NOT NULL "
                    "LIMIT 1")
        row = cur.fetchone()
    finally:
        conn.close()
    if row:
        try:
            ContentSealer(values["MEDIA_MASTER_KEY"]).open(bytes(row[1]), row[0])
        except Exception:
            raise BackupError("MEDIA_MASTER_KEY does not open the restored videos' content secrets: these are not "
                              "the secrets this backup was made with")


def restore(stack: Stack, folder: Path, phrase: str | None, force: bool = False) -> None:
    from .__main__ import running_pid
    manifest = read_manifest(folder)
    say(f"restoring {folder.name} (made {manifest['created_at']} from stack `{manifest['source_stack']}`) "
        f"into stack `{stack.name}`")
    if running_pid(stack):
        raise BackupError(f"the `{stack.name}` suite is running (make up): stop it first (make down)")
    # Everything is checked before anything is written.
    db_info = manifest["database"]
    if sha256_file(folder / DUMP) != db_info["sha256"]:
        raise BackupError(f"{folder / DUMP} does not match its manifest (damaged)")
    objects = bucket_backup.verify(folder, progress=say)
    (stack.var / "logs").mkdir(parents=True, exist_ok=True)
    secrets = load_or_create(stack.var / "secrets.env")
    if manifest["secrets"]["included"]:
        if not phrase:
            raise BackupError(f"this backup's secrets are encrypted: give the passphrase ({PASSPHRASE_ENV}, "
                              "--passphrase-file or a terminal prompt)")
        data_secrets = open_secrets(json.loads((folder / SECRETS_FILE).read_text()), phrase)
        say(f"secrets: {', '.join(sorted(data_secrets))} decrypted")
    else:
        data_secrets = {k: secrets[k] for k in DATA_SECRETS if k in secrets}
        say(f"secrets: not in the backup; using {stack.var / 'secrets.env'} as it is (it must hold the "
            "source's values)")
    with infrastructure(stack, secrets):
        store = s3_store(stack, secrets)
        rows, empty_bucket = database_rows(stack), bucket_backup.is_empty(store)
        if (rows or not empty_bucket) and not force:
            raise BackupError(f"the `{stack.name}` stack is not empty ({rows} table(s) with rows, bucket "
                              f"{'empty' if empty_bucket else 'not empty'}): restore goes onto an empty stack; "
                              "--force deletes its data first")
        if not empty_bucket:
            say(f"objects: {bucket_backup.delete_all(store)} deleted from the bucket (--force)")
        try:
            recreate_database(stack, secrets["DB_PASSWORD"])
            say("database: loading")
            with open(folder / DUMP, "rb") as f:
                proc = subprocess.run(_client_argv("mariadb", stack) + [DB_NAME], stdin=f, stderr=subprocess.PIPE)
            if proc.returncode:
                raise BackupError(f"loading the database failed: {proc.stderr.decode(errors='replace').strip()}")
            check_secrets_open_data(stack, data_secrets)
            say("database: migrating to this version's schema")
            dbsetup.setup(stack, secrets["DB_PASSWORD"], DB_NAME, out=lambda m: say(f"database: {m}"))
            bucket_backup.load(store, folder, objects, progress=say)
        except BaseException:
            say("restore failed: emptying the stack again (nothing is left half-restored)")
            recreate_database(stack, secrets["DB_PASSWORD"])
            raise
    write_secrets(stack, data_secrets)
    say(f"restore complete: {len(objects)} objects; data secrets written to {stack.var / 'secrets.env'}; "
        "start the suite (make up)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stack.backup", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["backup", "restore"])
    ap.add_argument("folder", nargs="?", type=Path, help="restore: the backup folder")
    ap.add_argument("--stack", default="dev", help="dev (make up), test, or any name with --offset")
    ap.add_argument("--offset", type=int, help="port offset of a stack other than dev/test (stack/layout.py)")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "backups", help="backup: where the folder goes")
    ap.add_argument("--passphrase-file", help=f"the passphrase (else ${PASSPHRASE_ENV}, else a prompt)")
    ap.add_argument("--no-secrets", action="store_true", help="backup: leave the secrets out (you keep secrets.env)")
    ap.add_argument("--force", action="store_true", help="restore: delete the target stack's data first")
    args = ap.parse_args(argv)
    if args.offset is None and args.stack not in STACKS:
        ap.error(f"unknown stack {args.stack!r}: give its --offset")
    stack = STACKS[args.stack] if args.offset is None else Stack(args.stack, args.offset)
    started = time.monotonic()
    try:
        if args.command == "backup":
            backup(stack, args.out, None if args.no_secrets else passphrase(args.passphrase_file, True),
                   include_secrets=not args.no_secrets)
        else:
            if args.folder is None:
                ap.error("restore needs the backup folder")
            restore(stack, args.folder, passphrase(args.passphrase_file, False), args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:          # S3, MariaDB, disk: say what failed, never a bare traceback
        print(f"error: {args.command} failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    say(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
