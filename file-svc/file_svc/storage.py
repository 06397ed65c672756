"""Storage verbs on top of the boto3 client: streaming put (multipart, bounded memory),
ranged get, head, delete (one / by prefix), list, and multipart assembly for callers that
receive an object in pieces (tus uploads). Every multipart upload that fails is aborted,
so S3 never keeps orphan parts."""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

from svcommon.timeutil import iso

from svcommon.partbuffers import PartBuffers
from .extensions import s3
from svcommon.rawbody import BodyReader

log = logging.getLogger("file_svc.storage")
READ_CHUNK = 1024 * 1024


def read_part(stream, size: int, buffers: PartBuffers | None = None) -> bytearray:
    """Read up to ``size`` bytes (less only at end of stream) into one buffer, a reused one
    from ``buffers`` when it fills: each byte is copied once, and a part costs its size in
    memory. ``stream``: a BodyReader (bytes land in the buffer straight from the socket) or
    any file object with ``read``."""
    buf = buffers.take(size) if buffers else bytearray(size)
    with memoryview(buf) as view:
        if isinstance(stream, BodyReader):
            got = stream.readfull(view)
        else:
            got = 0
            while got < size:
                piece = stream.read(min(READ_CHUNK, size - got))
                if not piece:
                    break
                view[got:got + len(piece)] = piece
                got += len(piece)
        if got == size:
            return buf
        short = bytearray(view[:got])      # the last part: its own exact-size buffer
    if buffers:
        buffers.give(buf)
    return short


def put_stream(key: str, stream, content_type: str, part_size: int, concurrency: int,
               buffers: PartBuffers | None = None) -> dict:
    """Store the stream as ``key``; one PUT when it fits in a part, else multipart with at
    most ``concurrency`` parts in flight while the next one is read (memory: that many
    parts plus the one being read)."""
    store = s3()
    buffers = buffers or PartBuffers(0)
    first = read_part(stream, part_size, buffers)
    if len(first) < part_size:
        with store.errors():
            resp = store.client.put_object(Bucket=store.bucket, Key=key, Body=first, ContentType=content_type)
        return {"key": key, "size": len(first), "etag": resp.get("ETag", "").strip('"')}
    with store.errors():
        upload_id = store.client.create_multipart_upload(Bucket=store.bucket, Key=key,
                                                         ContentType=content_type)["UploadId"]
    total = 0
    try:
        parts: list[dict] = []
        inflight: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3part") as pool:
            number, data = 1, first
            while data:
                total += len(data)
                inflight.append(pool.submit(_upload_part, store, key, upload_id, number, data, buffers))
                del data  # the worker holds the only reference: the buffer is reused once sent
                while len(inflight) >= concurrency:
                    parts.append(inflight.popleft().result())
                number += 1
                data = read_part(stream, part_size, buffers)
            while inflight:
                parts.append(inflight.popleft().result())
        with store.errors():
            resp = store.client.complete_multipart_upload(
                Bucket=store.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p["n"], "ETag": p["etag"]} for p in parts]})
    except BaseException:
        abort_quietly(key, upload_id)
        raise
    return {"key": key, "size": total, "etag": resp.get("ETag", "").strip('"')}


def _upload_part(store, key: str, upload_id: str, number: int, data: bytearray,
                 buffers: PartBuffers | None = None) -> dict:
    # Runs in pool threads (no app context): the store is passed in.
    try:
        with store.errors():
            resp = store.client.upload_part(Bucket=store.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                            Body=data)
    finally:
        if buffers:
            buffers.give(data)
    return {"n": number, "etag": resp["ETag"].strip('"'), "size": len(data)}


def abort_quietly(key: str, upload_id: str) -> None:
    store = s3()
    try:
        store.client.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # best effort; S3 lifecycle rules are the backstop
        log.error("could not abort multipart upload", extra={"key": key, "error": str(exc)})


def get(key: str, range_header: str | None) -> dict:
    store = s3()
    kw = {"Range": range_header} if range_header else {}
    with store.errors():
        return store.client.get_object(Bucket=store.bucket, Key=key, **kw)


def head(key: str) -> dict:
    store = s3()
    with store.errors():
        return store.client.head_object(Bucket=store.bucket, Key=key)


def delete(key: str) -> None:
    store = s3()
    with store.errors():
        store.client.delete_object(Bucket=store.bucket, Key=key)


def list_page(prefix: str, continuation: str | None, limit: int) -> tuple[list[dict], str | None]:
    store = s3()
    kw = {"Bucket": store.bucket, "Prefix": prefix, "MaxKeys": limit}
    if continuation:
        kw["ContinuationToken"] = continuation
    with store.errors():
        resp = store.client.list_objects_v2(**kw)
    items = [{"key": o["Key"], "size": o["Size"], "etag": o.get("ETag", "").strip('"'),
              "last_modified": iso(o["LastModified"])} for o in resp.get("Contents", [])]
    return items, resp.get("NextContinuationToken") if resp.get("IsTruncated") else None


def delete_prefix(prefix: str) -> int:
    """Delete every object under ``prefix`` (and abort its unfinished multipart uploads)."""
    store = s3()
    deleted, token = 0, None
    while True:
        items, token = list_page(prefix, token, 1000)
        if items:
            with store.errors():
                store.client.delete_objects(Bucket=store.bucket, Delete={
                    "Objects": [{"Key": i["key"]} for i in items], "Quiet": True})
            deleted += len(items)
        if not token:
            break
    for up in list_multipart(prefix):
        abort_quietly(up["key"], up["upload_id"])
    return deleted


def list_multipart(prefix: str) -> Iterator[dict]:
    """Every unfinished multipart upload under ``prefix`` (all pages), with when it began."""
    store = s3()
    markers: dict = {}
    while True:
        with store.errors():
            resp = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix, **markers)
        for u in resp.get("Uploads", []):
            yield {"key": u["Key"], "upload_id": u["UploadId"],
                   "initiated": iso(u["Initiated"]) if u.get("Initiated") else None}
        if not resp.get("IsTruncated"):
            return
        markers = {"KeyMarker": resp.get("NextKeyMarker", ""), "UploadIdMarker": resp.get("NextUploadIdMarker", "")}


# ---- multipart assembly for callers -----------------------------------------------------
def create_multipart(key: str, content_type: str) -> str:
    store = s3()
    with store.errors():
        return store.client.create_multipart_upload(Bucket=store.bucket, Key=key, ContentType=content_type)["UploadId"]


def part_url(key: str, upload_id: str, number: int, length: int, expires: int) -> str:
    """A URL that stores part ``number`` of exactly ``length`` bytes with one plain PUT,
    valid ``expires`` seconds: the length is a signed header (S3 refuses any other body
    size), the body is not hashed (UNSIGNED-PAYLOAD, as every presigned PUT)."""
    store = s3()
    with store.errors():
        return store.client.generate_presigned_url(
            "upload_part", ExpiresIn=expires,
            Params={"Bucket": store.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number,
                    "ContentLength": length})


def complete_multipart(key: str, upload_id: str, parts: list[dict]) -> dict:
    store = s3()
    with store.errors(not_found="no such multipart upload"):
        resp = store.client.complete_multipart_upload(
            Bucket=store.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p["n"], "ETag": p["etag"]} for p in parts]})
    info = head(key)
    return {"key": key, "size": info["ContentLength"], "etag": resp.get("ETag", "").strip('"')}


def abort_multipart(key: str, upload_id: str) -> None:
    store = s3()
    with store.errors(not_found="no such multipart upload"):
        store.client.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload_id)
