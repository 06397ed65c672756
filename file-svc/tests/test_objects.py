"""Objects API against the real SeaweedFS: streaming put (single and multipart), ranged
get, head, delete, list, delete-by-prefix, and the refusals."""
from __future__ import annotations

import io
import os

import pytest


MiB = 1024 * 1024


@pytest.fixture
def put(client, auth):
    def do(key, data, service="upload", **headers):
        return client.put(f"/objects/{key}", data=data, headers={**auth(service), **headers})
    return do


def orphans(s3, prefix):
    return s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=prefix).get("Uploads", [])


def test_small_put_get_head_delete(client, s3, vid, auth, put):
    key = f"originals/{vid}/original"
    r = put(key, b"hello world", **{"Content-Type": "video/mp4"})
    assert r.status_code == 201 and r.json["size"] == 11
    r = client.get(f"/objects/{key}", headers=auth())
    assert r.status_code == 200 and r.data == b"hello world" and r.headers["Accept-Ranges"] == "bytes"
    r = client.head(f"/objects/{key}", headers=auth())
    assert r.status_code == 200 and r.headers["Content-Length"] == "11" and r.headers["Content-Type"] == "video/mp4"
    assert client.delete(f"/objects/{key}", headers=auth()).status_code == 204
    assert client.get(f"/objects/{key}", headers=auth()).status_code == 404
    assert "Contents" not in s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=f"originals/{vid}/")


def test_streaming_multipart_put_and_ranges(client, s3, vid, auth, put):
    data = os.urandom(12 * MiB + 12345)  # 3 parts of 5 MiB (the last one short)
    key = f"originals/{vid}/original"
    r = put(key, io.BytesIO(data))
    assert r.status_code == 201 and r.json["size"] == len(data)
    assert "-3" in s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"]  # really multipart
    assert orphans(s3, f"originals/{vid}/") == []
    r = client.get(f"/objects/{key}", headers={**auth(), "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.data == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    r = client.get(f"/objects/{key}", headers={**auth(), "Range": "bytes=-10"})
    assert r.status_code == 206 and r.data == data[-10:]
    r = client.get(f"/objects/{key}", headers={**auth(), "Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.json["code"] == "range_not_satisfiable"
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    assert client.get(f"/objects/{key}", headers=auth()).data == data


def test_failed_stream_aborts_multipart(app, s3, vid):
    """A body that dies after two parts leaves neither an object nor orphan parts."""
    from file_svc import storage

    class Dying(io.RawIOBase):
        sent = 0

        def read(self, n=-1):
            if self.sent > 11 * MiB:
                raise OSError("client went away")
            self.sent += n
            return b"x" * n

    key = f"originals/{vid}/original"
    with app.app_context(), pytest.raises(OSError):
        storage.put_stream(key, Dying(), "video/mp4", 5 * MiB, 2)
    assert orphans(s3, f"originals/{vid}/") == []
    assert "Contents" not in s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=f"originals/{vid}/")


def test_short_body_keeps_nothing(client, s3, vid, auth):
    key = f"originals/{vid}/original"
    r = client.put(f"/objects/{key}", input_stream=io.BytesIO(b"x" * 100), headers=auth(),
                   environ_overrides={"CONTENT_LENGTH": "5000"})
    assert r.status_code == 400
    assert "Contents" not in s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=f"originals/{vid}/")


def test_list_and_delete_prefix(client, vid, auth, put):
    for name in ("a", "b", "c/d"):
        assert put(f"originals/{vid}/{name}", b"1").status_code == 201
    assert put(f"originals/{vid}x/a", b"1").status_code == 201  # a sibling that must survive
    r = client.get(f"/objects?prefix=originals/{vid}/", headers=auth())
    assert sorted(i["key"] for i in r.json["items"]) == [f"originals/{vid}/{n}" for n in ("a", "b", "c/d")]
    r = client.delete(f"/objects?prefix=originals/{vid}/", headers=auth())
    assert r.status_code == 200 and r.json["deleted"] == 3
    assert client.get(f"/objects?prefix=originals/{vid}/", headers=auth()).json["items"] == []
    assert client.head(f"/objects/originals/{vid}x/a", headers=auth()).status_code == 200
    client.delete(f"/objects/originals/{vid}x/a", headers=auth())


@pytest.mark.parametrize("key", ["../etc/passwd", "originals/../media/x", "/originals/x", "originals//x",
                                 "originals/./x", "originals/a b", "originals/vidéo", "originals/x/",
                                 "originals/" + "a" * 600, "originals/%2e%2e/x"])
def test_bad_keys_refused(client, key, auth):
    r = client.put(f"/objects/{key}", data=b"x", headers=auth())
    assert r.status_code in (400, 404) and r.is_json
    if r.status_code == 400:
        assert r.json["code"] == "invalid_key"


@pytest.mark.parametrize("service,method,key,status", [
    ("streaming", "PUT", "media/{vid}/x", 403),        # streaming only reads
    ("streaming", "GET", "originals/{vid}/x", 403),    # and never originals
    ("upload", "PUT", "media/{vid}/x", 403),           # upload may not write media
    ("upload", "PUT", "forensics/{vid}/x", 403),
    ("watermark", "PUT", "originals/{vid}/x", 403),    # workers never change originals
    ("watermark", "DELETE", "originals/{vid}/x", 403),
    ("upload", "PUT", "other/{vid}/x", 403),
    ("watermark", "PUT", "media/{vid}/x", 201),
    ("streaming", "GET", "media/{vid}/x", 200),
    ("upload", "DELETE", "media/{vid}/x", 204),
])
def test_prefix_permissions(client, vid, service, method, key, status, auth, put):
    key = key.format(vid=vid)
    if method == "GET":
        put(key, b"m", "watermark")
    r = client.open(f"/objects/{key}", method=method, data=b"m" if method == "PUT" else None, headers=auth(service))
    assert r.status_code == status
    if status == 403:
        assert r.json["code"] == "forbidden_prefix"
    client.delete(f"/objects/{key}", headers=auth("watermark"))


@pytest.mark.parametrize("header,token,status", [
    ("", None, 401),
    ("Basic abc", None, 401),
    ("Bearer not.a.jwt", None, 401),
    ("Bearer ", dict(sub="svc:upload", aud="streamvault"), 401),      # a user-audience token
    ("Bearer ", dict(sub="svc:upload", ttl=-60), 401),                # expired
    ("Bearer ", dict(sub="user123", role="admin"), 403),              # a user, even an admin
    ("Bearer ", dict(sub="svc:evil"), 403),                           # unknown service
])
def test_credentials_required(client, mint, header, token, status):
    value = header + (mint(**token) if token else "")
    r = client.get("/objects/originals/x/y", headers={"Authorization": value} if value else {})
    assert r.status_code == status and r.is_json


def test_missing_object_404(client, vid, auth):
    r = client.get(f"/objects/originals/{vid}/nope", headers=auth())
    assert r.status_code == 404 and r.json["code"] == "not_found"
    assert client.head(f"/objects/originals/{vid}/nope", headers=auth()).status_code == 404


def test_s3_down_is_503_with_retry_after(make_app, auth):
    app = make_app(S3_ENDPOINT="http://127.0.0.1:9", S3_RETRY_AFTER_SECONDS=7)
    r = app.test_client().put("/objects/originals/x/y", data=b"x", headers=auth())
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert r.json["code"] == "storage_unavailable" and "unreachable" in r.json["error"]
    assert app.test_client().get("/readyz").status_code == 503
