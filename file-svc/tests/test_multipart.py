"""Multipart assembly sub-resources of /objects/{key} (used by both upload paths): the parts
themselves go to S3 at URLs file-svc signs."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import botocore.auth
import requests

from file_svc import storage


MiB = 1024 * 1024


def part_url(client, auth, key, uid, n, length, service="upload"):
    return client.get(f"/objects/{key}?upload_id={uid}&part={n}&length={length}", headers=auth(service))


def put_part(client, auth, key, uid, n, data) -> requests.Response:
    r = part_url(client, auth, key, uid, n, len(data))
    assert r.status_code == 200 and r.json["n"] == n and r.json["expires_in"] == 300, r.json
    return requests.put(r.json["url"], data=data, timeout=30)


def test_assemble_from_parts(client, s3, vid, auth):
    key = f"originals/{vid}/original"
    r = client.post(f"/objects/{key}?uploads", headers={**auth(), "Content-Type": "video/mp4"})
    assert r.status_code == 201
    uid = r.json["upload_id"]
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    parts = []
    # Out of order, and part 2 sent twice (a retried request): the last one wins.
    for n in (2, 1, 2, 3):
        r = put_part(client, auth, key, uid, n, chunks[n - 1])
        assert r.status_code == 200
        parts = [p for p in parts if p["n"] != n] + [{"n": n, "etag": r.headers["ETag"].strip('"')}]
    r = client.post(f"/objects/{key}?upload_id={uid}", json={"parts": sorted(parts, key=lambda p: p["n"])},
                    headers=auth())
    assert r.status_code == 200 and r.json["size"] == sum(map(len, chunks))
    assert client.get(f"/objects/{key}", headers=auth()).data == b"".join(chunks)
    client.delete(f"/objects/{key}", headers=auth())


def test_abort_leaves_nothing(client, s3, vid, auth):
    key = f"originals/{vid}/original"
    uid = client.post(f"/objects/{key}?uploads", headers=auth()).json["upload_id"]
    assert put_part(client, auth, key, uid, 1, os.urandom(5 * MiB)).status_code == 200
    assert client.delete(f"/objects/{key}?upload_id={uid}", headers=auth()).status_code == 204
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=f"originals/{vid}/").get("Uploads", []) == []
    r = put_part(client, auth, key, uid, 1, b"x")
    assert r.status_code == 404 and "<Code>NoSuchUpload</Code>" in r.text


def test_part_limits_and_permissions(client, vid, auth):
    key = f"originals/{vid}/original"
    uid = client.post(f"/objects/{key}?uploads", headers=auth()).json["upload_id"]
    assert part_url(client, auth, key, uid, 0, 1).status_code == 400
    assert part_url(client, auth, key, "", 1, 1).status_code == 400
    for length in ("0", "-1", "x", ""):
        r = part_url(client, auth, key, uid, 1, length)
        assert r.status_code == 400 and r.json["code"] == "invalid_length", length
    r = part_url(client, auth, key, uid, 1, 64 * MiB + 1)
    assert r.status_code == 413 and r.json["code"] == "part_too_large"
    # Parts only through their URLs, to keys the caller may write.
    r = client.put(f"/objects/{key}?upload_id={uid}&part=1", data=b"x", headers=auth())
    assert r.status_code == 400 and "GET ?upload_id" in r.json["error"]
    assert part_url(client, auth, key, uid, 1, 1, service="streaming").status_code == 403
    assert part_url(client, auth, f"media/{vid}/x", uid, 1, 1).status_code == 403
    assert client.post(f"/objects/{key}?upload_id={uid}", json={"parts": []},
                       headers=auth()).status_code == 400
    assert client.post(f"/objects/media/{vid}/x?uploads", headers=auth()).status_code == 403
    assert client.post(f"/objects/{key}?uploads", headers=auth("streaming")).status_code == 403
    client.delete(f"/objects/{key}?upload_id={uid}", headers=auth())


def test_odd_part_numbers_are_refused(client, vid, auth):
    """Unicode digits, signs and non-integers: a clear 400, never a 500 or a silent coercion."""
    key = f"originals/{vid}/original"
    uid = client.post(f"/objects/{key}?uploads", headers=auth()).json["upload_id"]
    for part in ("\u00b2", "\u0661", "%201", "1.0", "99999999999999999999"):
        r = part_url(client, auth, key, uid, part, 1)
        assert r.status_code == 400 and r.json["code"] == "invalid_part_number", part
    for n in ("\u0661", "1", 1.0, True, 0, None):
        r = client.post(f"/objects/{key}?upload_id={uid}", json={"parts": [{"n": n, "etag": "e"}]}, headers=auth())
        assert r.status_code == 400 and r.json["code"] == "invalid_input", n
    client.delete(f"/objects/{key}?upload_id={uid}", headers=auth())


def test_a_part_url_stores_only_its_own_bytes(client, s3, vid, auth, monkeypatch):
    """The URL is bound to its length (S3 refuses another size), to its key and upload (a
    tampered URL's signature fails), and lapses (a URL whose time is up is refused)."""
    key = f"originals/{vid}/original"
    uid = client.post(f"/objects/{key}?uploads", headers=auth()).json["upload_id"]
    url = part_url(client, auth, key, uid, 1, 5 * MiB).json["url"]
    assert requests.put(url, data=b"x" * (5 * MiB + 1), timeout=30).status_code == 403
    assert requests.put(url, data=b"x" * (5 * MiB - 1), timeout=30).status_code == 403
    other = f"originals/{vid}/other"
    assert requests.put(url.replace(key, other, 1), data=b"x" * (5 * MiB), timeout=30).status_code == 403
    assert requests.put(url.replace("partNumber=1", "partNumber=2"), data=b"x" * (5 * MiB),
                        timeout=30).status_code == 403
    # Expiry: signed ten minutes ago for five (botocore's signing clock set back; S3 judges by
    # its own), so it lapsed five minutes ago: refused, nothing stored.
    signed_at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
    with client.application.app_context():
        lapsed = storage.part_url(key, uid, 1, 3, 300)
    monkeypatch.undo()
    assert "X-Amz-Date=" + signed_at.strftime("%Y%m%dT%H%M%SZ") in lapsed
    r = requests.put(lapsed, data=b"abc", timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert s3.client.list_parts(Bucket=s3.bucket, Key=key, UploadId=uid).get("Parts", []) == []
    client.delete(f"/objects/{key}?upload_id={uid}", headers=auth())
