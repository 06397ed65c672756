"""What a processed video looks like in the store under delivery v2, checked from the
contract (svcommon.media_crypto) and the metadata alone, and the way back to the pre-v2
state (plaintext segments, delivery_version 1, no content secret) for conversion tests."""
from __future__ import annotations

import json
import re
from pathlib import Path

from svcommon.filestore import FileStore, media_prefix
from svcommon.media_crypto import AUDIO, ContentSealer, VideoKeys, decrypt_segment, track_of
from svcommon.media_keys import audio_segment_key, segment_key
from svcommon.mp4boxes import walk_bytes

from tests.support.videos import sql

SEALED_RE = re.compile(r"^enc/([a-z0-9]{1,16})/(\d{5})-([0-9a-f]{32})\.m4s$")
PLAIN_RE = re.compile(r"^(video/[^/]+/[ab]/[^/]+|audio/\d{5}\.m4s)$")


def is_box_sequence(data: bytes) -> bool:
    """True when the bytes parse as ISO-BMFF boxes from start to end (what a plaintext
    fMP4 segment is: styp/moof/mdat)."""
    boxes = list(walk_bytes(data))
    return bool(boxes) and boxes[-1].end == len(data) and all(b.kind.isalnum() for b in boxes)


def media_row(conn, vid: str) -> dict:
    row = sql(conn, "SELECT metadata, content_secret_enc, delivery_version FROM video_media WHERE video_id = %s",
              (vid,), one=True)
    return {**row, "metadata": json.loads(row["metadata"])}


def keys_of(conn, master_key: str, vid: str) -> VideoKeys:
    return ContentSealer(master_key).open(bytes(media_row(conn, vid)["content_secret_enc"]), vid)


def expected_segments(meta: dict) -> list[tuple[str, str, int]]:
    n = meta["segment_count"]
    out = [(r["name"], v, i) for r in meta["renditions"] for v in "ab" for i in range(n)]
    if meta.get("audio"):
        out += [(AUDIO, "-", i) for i in range(len(meta["audio"]["segment_sizes"]))]
    return out


def assert_sealed_only(fs: FileStore, conn, master_key: str, vid: str) -> int:
    """Every .m4s object under media/{vid}/ is ciphertext (no box sequence) that opens with
    the key derived from the video's stored sealed secret, its plaintext an fMP4 segment of
    the size the metadata records; one per (rendition, variant, index); no plaintext
    segment anywhere. Returns how many sealed segments there are."""
    row = media_row(conn, vid)
    assert row["delivery_version"] == 2 and row["content_secret_enc"] is not None, row
    keys = keys_of(conn, master_key, vid)
    meta = row["metadata"]
    prefix = media_prefix(vid)
    names = [o["key"][len(prefix):] for o in fs.list(prefix)]
    assert not [n for n in names if PLAIN_RE.match(n)], names
    segments = [n for n in names if n.endswith(".m4s")]
    found = set()
    for name in segments:
        m = SEALED_RE.match(name)
        assert m, f"a segment outside enc/: {name}"
        rendition, index = m.group(1), int(m.group(2))
        variants = ["-"] if rendition == AUDIO else ["a", "b"]
        variant = next((v for v in variants if keys.file_name(rendition, v, index) == name.split("/")[-1]), None)
        assert variant is not None, f"{name} is not named under the stored secret"
        body = fs.get_bytes(prefix + name)
        assert not is_box_sequence(body), f"{name} is a plaintext box sequence"
        plain = decrypt_segment(keys.segment_key(track_of(rendition), variant, index), vid, rendition, index, body)
        assert is_box_sequence(plain)
        sizes = (meta["audio"]["segment_sizes"] if rendition == AUDIO
                 else next(r for r in meta["renditions"] if r["name"] == rendition)["segments"][variant])
        assert len(plain) == sizes[index] and len(body) == len(plain) + 28
        found.add((rendition, variant, index))
    assert found == set(expected_segments(meta)) and len(segments) == len(found)
    return len(found)


def plain_key(vid: str, rendition: str, variant: str, index: int) -> str:
    return audio_segment_key(vid, index) if rendition == AUDIO else segment_key(vid, rendition, variant, index)


def make_v1(fs: FileStore, conn, master_key: str, vid: str) -> None:
    """Turn a processed (v2) video back into exactly what processing stored before v2:
    plaintext segments at the v1 keys, no enc/ objects, delivery_version 1, no secret."""
    keys = keys_of(conn, master_key, vid)
    meta = media_row(conn, vid)["metadata"]
    for rendition, variant, index in expected_segments(meta):
        body = fs.get_bytes(sealed_key(keys, rendition, variant, index))
        plain = decrypt_segment(keys.segment_key(track_of(rendition), variant, index), vid, rendition, index, body)
        fs.put_stream(plain_key(vid, rendition, variant, index), plain, length=len(plain), content_type="video/mp4")
    fs.delete_prefix(media_prefix(vid) + "enc/")
    sql(conn, "UPDATE video_media SET delivery_version = 1, content_secret_enc = NULL WHERE video_id = %s", (vid,))


def sealed_key(keys: VideoKeys, rendition: str, variant: str, index: int) -> str:
    return f"{media_prefix(keys.video_id)}enc/{rendition}/{keys.file_name(rendition, variant, index)}"


def plain_segments(fs: FileStore, vid: str) -> list[str]:
    prefix = media_prefix(vid)
    return sorted(o["key"] for o in fs.list(prefix) if PLAIN_RE.match(o["key"][len(prefix):]))


def sealed_objects(fs: FileStore, vid: str) -> list[str]:
    return sorted(o["key"] for o in fs.list(media_prefix(vid) + "enc/"))


def rebuild_tree(fs: FileStore, conn, master_key: str, vid: str, dest: Path) -> dict:
    """The pipeline's output tree of a processed video, back from the store (segments
    decrypted); returns its metadata. Lets a test store a tree without encoding again."""
    keys = keys_of(conn, master_key, vid)
    meta = media_row(conn, vid)["metadata"]
    for rendition, variant, index in expected_segments(meta):
        body = fs.get_bytes(sealed_key(keys, rendition, variant, index))
        path = dest / plain_key(vid, rendition, variant, index)[len(media_prefix(vid)):]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(decrypt_segment(keys.segment_key(track_of(rendition), variant, index), vid, rendition,
                                         index, body))
    prefix = media_prefix(vid)
    for o in fs.list(prefix):
        rel = o["key"][len(prefix):]
        if not rel.startswith(("enc/", "forensics/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(fs.get_bytes(o["key"]))
    return meta
