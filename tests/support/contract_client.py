"""A StreamVault playback client written only from the public contract (docs/api.md),
with no browser and no knowledge of the server's code: log in, register a device key and
get a device-bound token (RFC 9449 DPoP), open a playback session with an ephemeral ECDH
P-256 key, derive the KEK, unwrap the CEK, read the per-session DASH manifest, fetch and
decrypt segments, and write a playable fragmented MP4.

Reused by the playback tests, the delivery benchmark (bench/delivery) and the forensics
work (a "leaked" file of a known session). Usage::

    c = ContractClient("http://127.0.0.1:8080").login(username, password)
    s = c.open_session(video_id)
    c.download(s, "480p", Path("out.mp4"))          # init + every segment, decrypted
"""
from __future__ import annotations

import base64
import math
import re
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


def unwrap_cek(kek: bytes, session_id: str, wrapped: dict) -> bytes:
    """wrapped_cek = AES-256-GCM(KEK, nonce, CEK, aad=session_id)."""
    return AESGCM(kek).decrypt(b64url_decode(wrapped["nonce"]), b64url_decode(wrapped["ciphertext"]),
                               session_id.encode())


def decrypt_segment(cek: bytes, session_id: str, rendition: str, index: int | str, body: bytes) -> bytes:
    """body = nonce(12) ‖ ciphertext ‖ tag(16); AAD = "{session_id}:{rendition}:{index}"."""
    return AESGCM(cek).decrypt(body[:12], body[12:], f"{session_id}:{rendition}:{index}".encode())


def parse_mpd(text: str, base: str) -> list[Representation]:
    """The DASH subset the contract's manifests use: SegmentTemplate with SegmentTimeline
    (or duration), $RepresentationID$ and $Number[%0Nd]$."""
    root = ET.fromstring(text)
    total = _iso_duration(root.get("mediaPresentationDuration", "PT0S"))
    reps = []
    for aset in root.iterfind(".//d:AdaptationSet", MPD_NS):
        kind = aset.get("contentType") or (aset.get("mimeType") or "video/").split("/")[0]
        tpl = aset.find("d:SegmentTemplate", MPD_NS)
        for rep in aset.iterfind("d:Representation", MPD_NS):
            own = rep.find("d:SegmentTemplate", MPD_NS)
            t = own if own is not None else tpl
            count = _segment_count(t, total)
            start = int(t.get("startNumber", "1"))
            rid = rep.get("id")
            reps.append(Representation(
                rid, kind, int(rep.get("bandwidth", "0")),
                urljoin(base, _fill(t.get("initialization"), rid, None)),
                [urljoin(base, _fill(t.get("media"), rid, n)) for n in range(start, start + count)],
                int(rep.get("width")) if rep.get("width") else None,
                int(rep.get("height")) if rep.get("height") else None))
    return reps


def _fill(template: str, rid: str, number: int | None) -> str:
    out = template.replace("$RepresentationID$", rid)
    if number is not None:
        out = re.sub(r"\$Number(?:%0(\d+)d)?\$", lambda m: str(number).zfill(int(m.group(1) or 0)), out)
    return out


def _segment_count(tpl, total: float) -> int:
    timeline = tpl.find("d:SegmentTimeline", MPD_NS)
    if timeline is not None:
        return sum(1 + int(s.get("r", "0")) for s in timeline.iterfind("d:S", MPD_NS))
    scale = int(tpl.get("timescale", "1"))
    return math.ceil(total * scale / int(tpl.get("duration")))


def _iso_duration(text: str) -> float:
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", text)
    if not m:
        raise ValueError(f"unsupported duration {text}")
    h, mnt, s = m.groups()
    return int(h or 0) * 3600 + int(mnt or 0) * 60 + float(s or 0)


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
    def open_session(self, video_id: str) -> PlaybackSession:
        eph = ec.generate_private_key(ec.SECP256R1())
        n = eph.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}
        body = self.call("POST", "/api/stream/sessions", {"video_id": video_id, "client_public_key": jwk},
                         expect=(201,)).json()
        sid = body["session_id"]
        spk = body["server_public_key"]
        server = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url_decode(spk["x"]), "big"),
                                               int.from_bytes(b64url_decode(spk["y"]), "big"),
                                               ec.SECP256R1()).public_key()
        shared = eph.exchange(ec.ECDH(), server)
        kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=sid.encode(), info=KEK_INFO).derive(shared)
        cek = unwrap_cek(kek, sid, body["wrapped_cek"])
        return PlaybackSession(sid, urljoin(self.gateway + "/", body["manifest_url"]), kek,
                               {body["key_epoch"]: cek}, body["key_epoch"], body["expires_at"], body)

    def heartbeat(self, s: PlaybackSession, position: float) -> dict:
        body = self.call("POST", f"/api/stream/sessions/{s.id}/heartbeat", {"position": position}).json()
        if body.get("wrapped_cek"):
            s.ceks[body["key_epoch"]] = unwrap_cek(s.kek, s.id, body["wrapped_cek"])
        s.key_epoch, s.expires_at = body["key_epoch"], body["expires_at"]
        return body

    def end(self, s: PlaybackSession) -> None:
        self.call("DELETE", f"/api/stream/sessions/{s.id}")

    def security(self, s: PlaybackSession) -> dict:
        return self.call("GET", f"/api/stream/sessions/{s.id}/security").json()

    # ---- media -----------------------------------------------------------------------------------
    def representations(self, s: PlaybackSession) -> list[Representation]:
        r = self.http.get(s.manifest_url)
        if r.status_code != 200:
            raise ContractError(r)
        return parse_mpd(r.text, s.manifest_url)

    def fetch(self, s: PlaybackSession, url: str, rendition: str, index: int | str,
              headers: dict | None = None) -> bytes:
        """GET one segment and decrypt it with the key of the epoch it says it uses."""
        r = self.http.get(url, headers=headers)
        if r.status_code != 200:
            raise ContractError(r)
        epoch = int(r.headers["X-Key-Epoch"])
        return decrypt_segment(s.ceks[epoch], s.id, rendition, index, r.content)

    def download(self, s: PlaybackSession, rendition: str, out: Path, audio: bool = False) -> Path:
        """init + every segment of ``rendition``, decrypted, as one fragmented MP4 file
        (and, with ``audio``, the audio track to ``out`` with suffix .audio.mp4)."""
        reps = {r.id: r for r in self.representations(s)}
        targets = [(reps[rendition], out)]
        if audio:
            a = next(r for r in reps.values() if r.kind == "audio")
            targets.append((a, out.with_suffix(".audio.mp4")))
        for rep, path in targets:
            with open(path, "wb") as f:
                f.write(self.fetch(s, rep.init_url, rep.id, "init"))
                for i, url in enumerate(rep.segment_urls):
                    f.write(self.fetch(s, url, rep.id, _index_of(url, i)))
        return out


def _index_of(url: str, default: int) -> int:
    m = re.search(r"(\d+)\.m4s$", urlsplit(url).path)
    return int(m.group(1)) if m else default


def new_device() -> DeviceKey:
    return DeviceKey()


__all__ = ["ContractClient", "ContractError", "PlaybackSession", "Representation", "decrypt_segment",
           "parse_mpd", "unwrap_cek", "new_device"]
