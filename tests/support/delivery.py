"""Helpers of the delivery-v2 server tests (test_delivery_server, test_delivery_keys)."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import requests

from svcommon import codeword
from svcommon.media_crypto import AUDIO, unwrap_segment_key
from tests.support.contract_client import ContractClient, b64url_decode
from tests.support.sealed_media import media_row

MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def variant(secret: str, sid: str, track: str, i: int) -> str:
    return "-" if track == AUDIO else codeword.variant(secret, sid, i)


def unwrap(s, entry: dict, track: str, epoch: int = 0) -> bytes:
    return unwrap_segment_key(s.ceks[epoch], s.id, track, int(entry["index"]), b64url_decode(entry["nonce"]),
                              b64url_decode(entry["ciphertext"]))


def keys(c: ContractClient, s, track: str, start: int, count: int, **extra) -> requests.Response:
    return c.call("POST", f"/api/stream/sessions/{s.id}/keys", {"track": track, "from": start, "count": count,
                                                                **extra}, expect=None)


def segment_count(conn, vid: str) -> tuple[int, int]:
    meta = media_row(conn, vid)["metadata"]
    return meta["segment_count"], len(meta["audio"]["segment_sizes"]) if meta.get("audio") else 0


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def session_urls(gw: str, s) -> dict[str, tuple[str, list[str]]]:
    """rendition -> (init URL, segment URLs) from the session's DASH manifest."""
    r = requests.get(s.manifest_url)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    out = {}
    for aset in ET.fromstring(r.text).iterfind(".//d:AdaptationSet", MPD):
        if aset.get("contentType") in ("text", "image"):     # captions, storyboard: not segmented media
            continue
        for rep in aset.iterfind("d:Representation", MPD):
            sl = rep.find("d:SegmentList", MPD)
            out[rep.get("id")] = (sl.find("d:Initialization", MPD).get("sourceURL"),
                                  [u.get("media") for u in sl.iterfind("d:SegmentURL", MPD)])
    return out
