"""Delivery v2 test helpers for the serving side: make sure a processed video's media is in
the v2 form (encrypted segments under their keyed names, sealed content secret,
delivery_version 2), and read a session's view of it from the contract primitives."""
from __future__ import annotations

import json

from svcommon.filestore import FileStore
from svcommon.media_crypto import AUDIO, ContentSealer, VideoKeys
from svcommon.media_keys import audio_segment_key, encrypted_segment_key, segment_key

from tests.support.videos import sql


def ensure_v2(conn, fs: FileStore, master_key: str, vid: str) -> VideoKeys:
    """The video's content keys. A video the worker stored the pre-v2 way (plaintext
    segments, delivery_version 1) is encrypted here the way the spec stores it, so the
    serving tests do not depend on the worker; a v2 video is left as it is."""
    row = sql(conn, "SELECT metadata, content_secret_enc, delivery_version FROM video_media WHERE video_id = %s",
              (vid,), one=True)
    sealer = ContentSealer(master_key)
    if row["delivery_version"] == 2:
        return sealer.open(bytes(row["content_secret_enc"]), vid)
    meta = json.loads(row["metadata"])
    keys, sealed = sealer.new_secret(vid)
    plain = [(r["name"], v, i, segment_key(vid, r["name"], v, i))
             for r in meta["renditions"] for v in "ab" for i in range(meta["segment_count"])]
    if meta.get("audio"):
        plain += [(AUDIO, "-", i, audio_segment_key(vid, i)) for i in range(len(meta["audio"]["segment_sizes"]))]
    for rendition, variant, i, key in plain:
        body = keys.encrypt(rendition, variant, i, fs.get_bytes(key))
        fs.put_stream(encrypted_segment_key(vid, rendition, keys.file_name(rendition, variant, i)), body,
                      length=len(body), content_type="application/octet-stream")
    sql(conn, "UPDATE video_media SET content_secret_enc = %s, delivery_version = 2 WHERE video_id = %s",
        (sealed, vid))
    for *_, key in plain:
        fs.delete(key)
    return keys


def segment_count(conn, vid: str) -> tuple[int, int]:
    meta = json.loads(sql(conn, "SELECT metadata FROM video_media WHERE video_id = %s", (vid,), one=True)["metadata"])
    return meta["segment_count"], len(meta["audio"]["segment_sizes"]) if meta.get("audio") else 0
