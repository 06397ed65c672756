"""The object half of a backup (`make backup` / `make restore`, docs/operations.md "Backup and
restore"): every object of the bucket copied to a folder with a manifest, and back into an
empty bucket. It goes straight to S3 with the one boto3 client (``s3client.S3Store``), not
through file-svc's API, which limits every caller to its own prefixes.

    python -m file_svc.bucket_backup save DIR           # DIR/objects/<key> + DIR/objects.json
    python -m file_svc.bucket_backup load DIR [--force]  # into an empty bucket (--force empties it)

(file-svc's S3 settings from the environment, as the service reads them; compose runs it in
the file-svc image.) ``stack.backup`` calls ``save``/``load`` for the native stack.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from .s3client import S3Store, error_code

MANIFEST = "objects.json"
FOLDER = "objects"
CHUNK = 1024 * 1024
Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore step that cannot go on; the message says what and why."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str            # as S3 reported it (a multipart upload's etag is not an MD5)
    sha256: str          # of the bytes copied: what a restore checks before it writes
    content_type: str


def _local_path(root: Path, key: str) -> Path:
    """Where ``key`` lives under ``root``; a key that would leave it is refused (our keys are
    generated and validated by file-svc, so this only guards a tampered manifest)."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
        raise BackupError(f"object key {key!r} cannot be stored as a file")
    return root.joinpath(*parts)


def list_objects(store: S3Store, prefix: str = "") -> Iterator[dict]:
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def is_empty(store: S3Store) -> bool:
    """No object in the bucket (a missing bucket is empty: file-svc creates it on first use)."""
    try:
        resp = store.client.list_objects_v2(Bucket=store.bucket, MaxKeys=1)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):
            return True
        raise
    return not resp.get("Contents")


def ensure_bucket(store: S3Store) -> None:
    try:
        store.client.head_bucket(Bucket=store.bucket)
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        store.client.create_bucket(Bucket=store.bucket)


def delete_all(store: S3Store, keys: list[str] | None = None) -> int:
    """Delete ``keys`` (default: every object of the bucket, and unfinished multipart uploads)."""
    if keys is None:
        keys = [o["Key"] for o in list_objects(store)]
        for page in store.client.get_paginator("list_multipart_uploads").paginate(Bucket=store.bucket):
            for up in page.get("Uploads", []):
                store.client.abort_multipart_upload(Bucket=store.bucket, Key=up["Key"], UploadId=up["UploadId"])
    for i in range(0, len(keys), 1000):
        store.client.delete_objects(Bucket=store.bucket, Delete={
            "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
    return len(keys)


def save(store: S3Store, dest: Path, progress: Progress = print) -> dict:
    """Copy every object to ``dest/objects/<key>`` and write ``dest/objects.json``. An object
    listed but gone when read (deleted meanwhile) is recorded under ``vanished``."""
    root = dest / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    saved: list[StoredObject] = []
    vanished: list[str] = []
    total = 0
    for listed in list_objects(store):
        key = listed["Key"]
        path = _local_path(root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            resp = store.client.get_object(Bucket=store.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                vanished.append(key)
                continue
            raise
        digest, size, body = hashlib.sha256(), 0, resp["Body"]
        try:
            with open(path, "wb") as out:
                for piece in body.iter_chunks(CHUNK):
                    out.write(piece)
                    digest.update(piece)
                    size += len(piece)
        finally:
            body.close()
        saved.append(StoredObject(key, size, resp.get("ETag", "").strip('"'), digest.hexdigest(),
                                  resp.get("ContentType") or "application/octet-stream"))
        total += size
        if len(saved) % 200 == 0:
            progress(f"objects: {len(saved)} copied ({total / 1e6:.1f} MB)")
    manifest = {"bucket": store.bucket, "count": len(saved), "bytes": total,
                "objects": [asdict(o) for o in saved], "vanished": vanished}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1))
    progress(f"objects: {len(saved)} copied ({total / 1e6:.1f} MB)"
             + (f"; {len(vanished)} deleted while copying" if vanished else ""))
    return manifest


def read_manifest(src: Path) -> list[StoredObject]:
    try:
        return [StoredObject(**o) for o in json.loads((src / MANIFEST).read_text())["objects"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{src / MANIFEST}: unreadable object manifest ({exc})")


def verify(src: Path, progress: Progress = print) -> list[StoredObject]:
    """Every object of the manifest is in the folder with its size and SHA-256 (read before a
    restore writes anything)."""
    objects = read_manifest(src)
    for obj in objects:
        path = _local_path(src / FOLDER, obj.key)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while piece := f.read(CHUNK):
                    digest.update(piece)
        except OSError as exc:
            raise BackupError(f"object {obj.key}: missing from the backup ({exc})")
        if path.stat().st_size != obj.size or digest.hexdigest() != obj.sha256:
            raise BackupError(f"object {obj.key}: the file in the backup does not match its manifest (damaged)")
    progress(f"objects: {len(objects)} verified")
    return objects


def load(store: S3Store, src: Path, objects: list[StoredObject], progress: Progress = print) -> None:
    """Upload ``objects`` (verified) from ``src``; on any failure what was uploaded is deleted
    again before the error is raised, so the bucket is left as empty as it was found."""
    ensure_bucket(store)
    done: list[str] = []
    try:
        for obj in objects:
            store.client.upload_file(str(_local_path(src / FOLDER, obj.key)), store.bucket, obj.key,
                                     ExtraArgs={"ContentType": obj.content_type})
            done.append(obj.key)
            if len(done) % 200 == 0:
                progress(f"objects: {len(done)}/{len(objects)} restored")
        progress(f"objects: {len(done)}/{len(objects)} restored")
    except BaseException:
        delete_all(store, done)
        raise


def main(argv: list[str] | None = None) -> int:
    from svcommon.config import load as load_settings
    from .settings import SETTINGS
    ap = argparse.ArgumentParser(prog="python -m file_svc.bucket_backup")
    ap.add_argument("command", choices=["save", "load"])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--force", action="store_true", help="load: empty a non-empty bucket first")
    args = ap.parse_args(argv)
    store = S3Store(load_settings(SETTINGS))
    try:
        if args.command == "save":
            save(store, args.folder)
            return 0
        objects = verify(args.folder)
        if not is_empty(store):
            if not args.force:
                raise BackupError(f"bucket {store.bucket} is not empty: restore goes onto an empty stack "
                                  "(--force deletes every object in it first)")
            print(f"objects: {delete_all(store)} deleted from the bucket (--force)")
        load(store, args.folder, objects)
        return 0
    except (BackupError, ClientError, BotoCoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
