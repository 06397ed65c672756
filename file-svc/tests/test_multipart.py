"""Multipart assembly sub-resources of /objects/{key} (used by upload-svc's tus uploads)."""
from __future__ import annotations

import os


MiB = 1024 * 1024


def test_assemble_from_parts(client, s3, vid, auth):
    key = f"originals/{vid}/original"
    r = client.post(f"/objects/{key}?uploads", headers={**auth(), "Content-Type": "video/mp4"})
    assert r.status_code == 201
    uid = r.json["upload_id"]
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    parts = []
    # Out of order, and part 2 sent twice (a retried request): the last one wins.
    for n in (2, 1, 2, 3):
        r = client.put(f"/objects/{key}?upload_id={uid}&part={n}", data=chunks[n - 1], headers=auth())
        assert r.status_code == 200
        parts = [p for p in parts if p["n"] != n] + [r.json]
    r = client.post(f"/objects/{key}?upload_id={uid}", json={"parts": sorted(parts, key=lambda p: p["n"])},
                    headers=auth())
    assert r.status_code == 200 and r.json["size"] == sum(map(len, chunks))
    assert client.get(f"/objects/{key}", headers=auth()).data == b"".join(chunks)
    client.delete(f"/objects/{key}", headers=auth())


def test_abort_leaves_nothing(client, s3, vid, auth):
    key = f"originals/{vid}/original"
    uid = client.post(f"/objects/{key}?uploads", headers=auth()).json["upload_id"]
    client.put(f"/objects/{key}?upload_id={uid}&part=1", data=os.urandom(5 * MiB), headers=auth())
    assert client.delete(f"/objects/{key}?upload_id={uid}", headers=auth()).status_code == 204
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=f"originals/{vid}/").get("Uploads", []) == []
    r = client.put(f"/objects/{key}?upload_id={uid}&part=1", data=b"x", headers=auth())
    assert r.status_code == 404 and r.json["code"] == "no_such_upload"


def test_part_limits_and_permissions(client, vid, auth):
    key = f"originals/{vid}/original"
    uid = client.post(f"/objects/{key}?uploads", headers=auth()).json["upload_id"]
    assert client.put(f"/objects/{key}?upload_id={uid}&part=0", data=b"x", headers=auth()).status_code == 400
    assert client.put(f"/objects/{key}?upload_id=&part=1", data=b"x", headers=auth()).status_code == 400
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
        r = client.put(f"/objects/{key}?upload_id={uid}&part={part}", data=b"x", headers=auth())
        assert r.status_code == 400 and r.json["code"] == "invalid_part_number", part
    for n in ("\u0661", "1", 1.0, True, 0, None):
        r = client.post(f"/objects/{key}?upload_id={uid}", json={"parts": [{"n": n, "etag": "e"}]}, headers=auth())
        assert r.status_code == 400 and r.json["code"] == "invalid_input", n
    client.delete(f"/objects/{key}?upload_id={uid}", headers=auth())
