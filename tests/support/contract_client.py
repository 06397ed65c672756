"""A StreamVault playback client written only from the public contract (docs/api.md,
delivery v2), with no browser and no knowledge of the server's code: log in, register a
device key and get a device-bound token (RFC 9449 DPoP), open a playback session with an
ephemeral ECDH P-256 key, derive the KEK, unwrap the CEK, read the per-session DASH manifest
(SegmentList of shared, cacheable ciphertext URLs), fetch the session's segment keys
(wrapped under the CEK), decrypt segments and write a playable fragmented MP4.

Reused by the playback tests, the delivery benchmark (bench/delivery) and the forensics
work (a "leaked" file of a known session). Usage::

    c = ContractClient("http://127.0.0.1:8080").login(username, password)
    s = c.open_session(video_id)
    c.download(s, "480p", Path("out.mp4"))          # init + every segment, decrypted
"""
from __future__ import annotations

import base64
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .dpop import FINGERPRINT, DeviceKey

KEK_INFO = b"streamvault/kek/v1"
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
# A public segment URL: /media/{video}/{rendition}/{index:05d}-{32 hex}.m4s
SEGMENT_URL_RE = re.compile(r"/media/([0-9a-f]{32})/([a-z0-9]{1,16})/([0-9]{5})-[0-9a-f]{32}\.m4s$")   # ASCII digits only
KEYS_PER_REQUEST = 16          # the contract's maximum count per key request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ContractError(Exception):
    def __init__(self, resp: requests.Response):
        try:
            body = resp.json()
        except ValueError:
            body = {"error": resp.text[:200], "code": "?"}
        super().__init__(f"{resp.request.method} {resp.url} -> {resp.status_code} {body}")
        self.status = resp.status_code
        self.code = body.get("code")
        self.body = body
        self.headers = resp.headers


@dataclass
class Representation:
    id: str
    kind: str                 # "video" | "audio"
    bandwidth: int
    init_url: str
    segment_urls: list[str]
    width: int | None = None
    height: int | None = None


@dataclass
class PlaybackSession:
    id: str
    manifest_url: str
    kek: bytes
    ceks: dict[int, bytes]    # key epoch -> content key
    key_epoch: int
    expires_at: str
    raw: dict = field(default_factory=dict)
    keys: dict[tuple[str, int], bytes] = field(default_factory=dict)   # (track, index) -> segment key


def unwrap_cek(kek: bytes, session_id: str, wrapped: dict) -> bytes:
    """wrapped_cek = AES-256-GCM(KEK, nonce, CEK, aad=session_id)."""
    return AESGCM(kek).decrypt(b64url_decode(wrapped["nonce"]), b64url_decode(wrapped["ciphertext"]),
                               session_id.encode())


def unwrap_segment_key(cek: bytes, session_id: str, track: str, entry: dict) -> bytes:
    """A key entry {index, nonce, ciphertext}: AES-256-GCM(CEK, nonce, segment key,
    aad="streamvault/segkey/v1:{session_id}:{track}:{index}")."""
    aad = f"streamvault/segkey/v1:{session_id}:{track}:{int(entry['index'])}".encode()
    return AESGCM(cek).decrypt(b64url_decode(entry["nonce"]), b64url_decode(entry["ciphertext"]), aad)


def decrypt_segment(key: bytes, video_id: str, rendition: str, index: int, body: bytes) -> bytes:
    """body = nonce(12) ‖ ciphertext ‖ tag(16); AAD = "streamvault/seg/v1:{video_id}:{rendition}:{index}"."""
    return AESGCM(key).decrypt(body[:12], body[12:], f"streamvault/seg/v1:{video_id}:{rendition}:{int(index)}".encode())


def parse_segment_url(url: str) -> tuple[str, str, int]:
    """(video_id, rendition, index) of a public segment URL; ValueError for anything else."""
    m = SEGMENT_URL_RE.search(urlsplit(url).path)
    if not m:
        raise ValueError(f"not a segment URL: {url}")
    return m.group(1), m.group(2), int(m.group(3))


def track_of(rendition: str) -> str:
    return "audio" if rendition == "audio" else "video"


def parse_mpd(text: str, base: str) -> list[Representation]:
    """The DASH subset the contract's manifests use: per audio/video Representation a SegmentList
    with an Initialization sourceURL and one SegmentURL media per segment (origin-absolute paths)."""
    root = ET.fromstring(text)
    reps = []
    for aset in root.iterfind(".//d:AdaptationSet", MPD_NS):
        kind = aset.get("contentType") or (aset.get("mimeType") or "video/").split("/")[0]
        if kind in ("text", "image"):   # captions (whole WebVTT files) and the storyboard's
            continue                    # thumbnails (thumbnail_set below): not segmented media
        shared = aset.find("d:SegmentList", MPD_NS)
        for rep in aset.iterfind("d:Representation", MPD_NS):
            own = rep.find("d:SegmentList", MPD_NS)
            sl = own if own is not None else shared
            if sl is None:
                raise ValueError(f"representation {rep.get('id')} has no SegmentList")
            init = sl.find("d:Initialization", MPD_NS)
            reps.append(Representation(
                rep.get("id"), kind, int(rep.get("bandwidth", "0")),
                urljoin(base, init.get("sourceURL")),
                [urljoin(base, su.get("media")) for su in sl.iterfind("d:SegmentURL", MPD_NS)],
                int(rep.get("width")) if rep.get("width") else None,
                int(rep.get("height")) if rep.get("height") else None))
    return reps


@dataclass
class ThumbnailSet:
    """The manifest's DASH-IF thumbnail AdaptationSet (the storyboard): sprite URL template,
    seconds per sprite, tile grid and sprite size."""
    media: str                # URL template with $Number$, resolved against the manifest
    start_number: int
    seconds: float            # per sprite
    columns: int
    rows: int
    width: int                # of a whole sprite
    height: int

    def url(self, number: int) -> str:
        return self.media.replace("$Number$", str(number))


def thumbnail_set(text: str, base: str) -> ThumbnailSet | None:
    root = ET.fromstring(text)
    for aset in root.iterfind(".//d:AdaptationSet", MPD_NS):
        if aset.get("contentType") != "image":
            continue
        tmpl, rep = aset.find("d:SegmentTemplate", MPD_NS), aset.find("d:Representation", MPD_NS)
        tile = rep.find("d:EssentialProperty[@schemeIdUri='http://dashif.org/thumbnail_tile']", MPD_NS)
        columns, rows = (int(x) for x in tile.get("value").split("x"))
        return ThumbnailSet(urljoin(base, tmpl.get("media")), int(tmpl.get("startNumber", "1")),
                            int(tmpl.get("duration")) / int(tmpl.get("timescale", "1")), columns, rows,
                            int(rep.get("width")), int(rep.get("height")))
    return None


def ephemeral_key() -> tuple[ec.EllipticCurvePrivateKey, dict]:
    """A player's ephemeral ECDH P-256 key for a session open, and its public JWK."""
    eph = ec.generate_private_key(ec.SECP256R1())
    n = eph.public_key().public_numbers()
    return eph, {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")),
                 "y": b64url(n.y.to_bytes(32, "big"))}


def session_kek(eph: ec.EllipticCurvePrivateKey, session_id: str, server_public_key: dict) -> bytes:
    """The session's key-encryption key (docs/api.md): ECDH of the player's ephemeral key with
    the server's, HKDF-SHA256 with the session id as salt."""
    server = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url_decode(server_public_key["x"]), "big"),
                                           int.from_bytes(b64url_decode(server_public_key["y"]), "big"),
                                           ec.SECP256R1()).public_key()
    shared = eph.exchange(ec.ECDH(), server)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=session_id.encode(), info=KEK_INFO).derive(shared)


class ContractClient:
    def __init__(self, gateway: str, device: DeviceKey | None = None, http: requests.Session | None = None):
        self.gateway = gateway.rstrip("/")
        self.device = device or DeviceKey()
        self.http = http or requests.Session()
        self.access_token: str | None = None      # account token (bearer)
        self.device_token: str | None = None      # device-bound (DPoP) token
        self.device_id: str | None = None

    # ---- accounts and device ------------------------------------------------------------------
    def login(self, username: str, password: str) -> "ContractClient":
        r = self.http.post(f"{self.gateway}/api/auth/login", json={"username": username, "password": password})
        if r.status_code != 200:
            raise ContractError(r)
        self.access_token = r.json()["access_token"]
        return self.register_device()

    def register_device(self) -> "ContractClient":
        url = f"{self.gateway}/api/auth/device-token"
        r = self.http.post(url, json={"fingerprint": FINGERPRINT},
                           headers={"Authorization": f"Bearer {self.access_token}",
                                    "DPoP": self.device.proof("POST", url)})
        if r.status_code != 200:
            raise ContractError(r)
        body = r.json()
        assert body["token_type"] == "DPoP"
        self.device_token, self.device_id = body["access_token"], body["device_id"]
        return self

    def dpop_headers(self, method: str, url: str, token: str | None = None, proof: str | None = None) -> dict:
        token = token or self.device_token
        return {"Authorization": f"DPoP {token}", "DPoP": proof or self.device.proof(method, url, token)}

    def call(self, method: str, path: str, body: dict | None = None, expect=(200, 201, 204), **kw) -> requests.Response:
        url = path if path.startswith("http") else self.gateway + path
        headers = kw.pop("headers", None) or self.dpop_headers(method, url)
        r = self.http.request(method, url, json=body, headers=headers, **kw)
        if expect and r.status_code not in expect:
            raise ContractError(r)
        return r

    # ---- sessions -------------------------------------------------------------------------------
    def open_session(self, video_id: str, purpose: str | None = None) -> PlaybackSession:
        """``purpose`` "download": a download-only session (no keys, no stream slot)."""
        eph, jwk = ephemeral_key()
        asked = {"video_id": video_id, "client_public_key": jwk, **({"purpose": purpose} if purpose else {})}
        body = self.call("POST", "/api/stream/sessions", asked, expect=(201,)).json()
        sid = body["session_id"]
        kek = session_kek(eph, sid, body["server_public_key"])
        cek = unwrap_cek(kek, sid, body["wrapped_cek"])
        s = PlaybackSession(sid, urljoin(self.gateway + "/", body["manifest_url"]), kek,
                            {body["key_epoch"]: cek}, body["key_epoch"], body["expires_at"], body)
        first = body.get("keys") or {}
        for track in ("video", "audio"):    # the first keys come with the session (no extra round trip)
            self._store_keys(s, track, first.get("key_epoch", body["key_epoch"]), first.get(track, []))
        return s

    def heartbeat(self, s: PlaybackSession, position: float, qoe: dict | None = None) -> dict:
        body = self.call("POST", f"/api/stream/sessions/{s.id}/heartbeat",
                         {"position": position, **({"qoe": qoe} if qoe is not None else {})}).json()
        if body.get("wrapped_cek"):
            s.ceks[body["key_epoch"]] = unwrap_cek(s.kek, s.id, body["wrapped_cek"])
        s.key_epoch, s.expires_at = body["key_epoch"], body["expires_at"]
        return body

    def end(self, s: PlaybackSession, qoe: dict | None = None) -> None:
        self.call("DELETE", f"/api/stream/sessions/{s.id}", {"qoe": qoe} if qoe is not None else None)

    def security(self, s: PlaybackSession) -> dict:
        return self.call("GET", f"/api/stream/sessions/{s.id}/security").json()

    # ---- keys ------------------------------------------------------------------------------------
    def request_keys(self, s: PlaybackSession, track: str, start: int, count: int,
                     key_epoch: int | None = None, expect=(200,)) -> requests.Response:
        """One raw POST …/keys (the tests look at refusals); ``expect=None`` returns any answer."""
        body = {"track": track, "from": start, "count": count,
                "key_epoch": s.key_epoch if key_epoch is None else key_epoch}
        return self.call("POST", f"/api/stream/sessions/{s.id}/keys", body, expect=expect)

    def fetch_keys(self, s: PlaybackSession, track: str, start: int, count: int = 8,
                   wait_pace: bool = False) -> dict[int, bytes]:
        """Segment keys from ``start`` (clipped at the end), unwrapped and remembered. With
        ``wait_pace`` a 429 key_pace_exceeded waits out its Retry-After (as a player does)."""
        heartbeats = 0
        while True:
            try:
                body = self.request_keys(s, track, start, count).json()
            except ContractError as e:
                if not (wait_pace and e.status == 429 and e.code == "key_pace_exceeded"):
                    raise
                time.sleep(max(1, int(e.headers.get("Retry-After", "1"))))
                continue
            if body["key_epoch"] in s.ceks:
                return self._store_keys(s, track, body["key_epoch"], body["keys"])
            if heartbeats == 2:
                raise RuntimeError(f"no CEK for key epoch {body['key_epoch']} after {heartbeats} heartbeats")
            heartbeats += 1
            self.heartbeat(s, 0.0)        # rotated since our last heartbeat: it brings the new CEK; ask again

    def _store_keys(self, s: PlaybackSession, track: str, epoch: int, entries: list[dict]) -> dict[int, bytes]:
        out = {}
        for e in entries:
            out[int(e["index"])] = s.keys[(track, int(e["index"]))] = unwrap_segment_key(s.ceks[epoch], s.id, track, e)
        return out

    def segment_key(self, s: PlaybackSession, track: str, index: int, ahead: int = 8,
                    wait_pace: bool = True) -> bytes:
        if (track, index) not in s.keys:
            self.fetch_keys(s, track, index, ahead, wait_pace=wait_pace)
        return s.keys[(track, index)]

    # ---- media -----------------------------------------------------------------------------------
    def representations(self, s: PlaybackSession) -> list[Representation]:
        r = self.http.get(s.manifest_url)
        if r.status_code != 200:
            raise ContractError(r)
        return parse_mpd(r.text, s.manifest_url)

    def fetch(self, s: PlaybackSession, url: str, rendition: str | None = None, index: int | str | None = None,
              headers: dict | None = None) -> bytes:
        """GET one segment and decrypt it with this session's key for it (fetched if not held);
        an init segment (plaintext, per session) is returned as it is. Video, rendition and
        index come from the URL (the remaining arguments are accepted for older callers)."""
        r = self.http.get(url, headers=headers)
        if r.status_code != 200:
            raise ContractError(r)
        if index == "init" or urlsplit(url).path.endswith("/init.mp4"):
            return r.content
        video_id, rend, i = parse_segment_url(url)
        return decrypt_segment(self.segment_key(s, track_of(rend), i), video_id, rend, i, r.content)

    def download(self, s: PlaybackSession, rendition: str, out: Path, audio: bool = False) -> Path:
        """init + every segment of ``rendition``, decrypted, as one fragmented MP4 file
        (and, with ``audio``, the audio track to ``out`` with suffix .audio.mp4). Keys are
        fetched KEYS_PER_REQUEST at a time; a pacing refusal is waited out."""
        reps = {r.id: r for r in self.representations(s)}
        targets = [(reps[rendition], out)]
        if audio:
            a = next(r for r in reps.values() if r.kind == "audio")
            targets.append((a, out.with_suffix(".audio.mp4")))
        for rep, path in targets:
            with open(path, "wb") as f:
                f.write(self.fetch(s, rep.init_url))
                for url in rep.segment_urls:
                    _, rend, i = parse_segment_url(url)
                    self.segment_key(s, track_of(rend), i, ahead=KEYS_PER_REQUEST)
                    f.write(self.fetch(s, url))
        return out


def _index_of(url: str, default: int | None = None) -> int:
    """The segment index a public segment URL names."""
    return parse_segment_url(url)[2]


__all__ = ["ContractClient", "ContractError", "PlaybackSession", "Representation", "decrypt_segment",
           "parse_mpd", "parse_segment_url", "unwrap_cek", "unwrap_segment_key"]
