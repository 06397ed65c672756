"""Pure pieces of playback, no services: the forensic codeword and metadata tag
(svcommon.codeword, a format the forensics work depends on), the session key math
(streaming_svc.session_crypto) and the delivery v2 media formats (svcommon.media_crypto),
each checked against the contract client's independent implementation of docs/api.md, and
the per-session manifest."""
from __future__ import annotations

import json
import struct

import pytest
from cryptography.exceptions import InvalidTag

from svcommon import codeword
from streaming_svc import session_crypto, manifest
from svcommon import media_crypto
from tests.support.contract_client import (decrypt_segment, parse_mpd, parse_segment_url, unwrap_cek,
                                           unwrap_segment_key)

SECRET = "s" * 43


def test_codeword_is_deterministic_keyed_and_balanced():
    sid = "0123456789abcdef0123456789abcdef"
    word = codeword.codeword(SECRET, sid, 512)
    assert word == codeword.codeword(SECRET, sid, 512)
    assert 200 < sum(word) < 312                                   # unbiased
    other = codeword.codeword("t" * 43, sid, 512)
    assert 180 < sum(a != b for a, b in zip(word, other)) < 332    # the secret matters
    other_session = codeword.codeword(SECRET, "f" * 32, 512)
    assert 180 < sum(a != b for a, b in zip(word, other_session)) < 332
    assert [codeword.variant(SECRET, sid, i) for i in range(8)] == ["ab"[b] for b in word[:8]]


def test_codeword_matches_its_documented_definition():
    import hashlib
    import hmac
    sid = "a" * 32
    for i in range(16):
        expected = hmac.new(SECRET.encode(), f"codeword:{sid}:{i}".encode(), hashlib.sha256).digest()[0] & 1
        assert codeword.codeword_bit(SECRET, sid, i) == expected


def test_metadata_tag_round_trip_and_forgery():
    sid = "0123456789abcdef0123456789abcdef"
    box = codeword.build_tag_box(SECRET, sid, 1_700_000_000)
    assert len(box) == codeword.TAG_BOX_SIZE and box[4:8] == b"uuid"
    mp4 = struct.pack(">I4s", 16, b"ftyp") + b"isom\0\0\0\0" + box + struct.pack(">I4s", 8, b"free")
    [tag] = codeword.find_tags(SECRET, mp4)
    assert (tag.session_id, tag.issued_at, tag.valid) == (sid, 1_700_000_000, True)
    forged = bytearray(mp4)
    forged[16 + 8 + 16 + 1] ^= 1                                   # flip a bit of the session id
    assert codeword.find_tags(SECRET, bytes(forged))[0].valid is False
    assert codeword.find_tags("x" * 43, mp4)[0].valid is False
    assert codeword.find_tags(SECRET, b"\0\0\0\x08junk" + b"garbage") == []
    with pytest.raises(ValueError):
        codeword.build_tag_box(SECRET, "not-hex")


def _client_side(handshake_pub: dict, client_priv, sid: str):
    """docs/api.md's derivation, written independently of streaming_svc.session_crypto."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from tests.support.contract_client import b64url_decode
    server = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url_decode(handshake_pub["x"]), "big"),
                                           int.from_bytes(b64url_decode(handshake_pub["y"]), "big"),
                                           ec.SECP256R1()).public_key()
    shared = client_priv.exchange(ec.ECDH(), server)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=sid.encode(), info=b"streamvault/kek/v1").derive(shared)


def test_key_exchange_follows_the_contract():
    from cryptography.hazmat.primitives.asymmetric import ec
    priv = ec.generate_private_key(ec.SECP256R1())
    sid = "b" * 32
    hs = session_crypto.open_session(session_crypto.public_jwk(priv.public_key()), sid)
    kek = _client_side(hs.server_public_key, priv, sid)
    assert kek == hs.kek
    cek = unwrap_cek(kek, sid, hs.wrapped_cek)
    assert cek == hs.cek and len(cek) == 32
    assert session_crypto.open_session(session_crypto.public_jwk(priv.public_key()), sid).cek != cek   # fresh per session


VID = "0123456789abcdef" * 2


def test_segment_format_and_key_wrapping_follow_the_contract():
    """What the media workers store and streaming-svc releases, opened by the contract client."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    keys, sealed = media_crypto.ContentSealer("m" * 43).new_secret(VID)
    assert media_crypto.ContentSealer("m" * 43).open(sealed, VID) == keys
    with pytest.raises(InvalidTag):
        media_crypto.ContentSealer("n" * 43).open(sealed, VID)
    body = keys.encrypt("480p", "a", 7, b"media bytes")
    key = keys.segment_key("video", "a", 7)
    assert decrypt_segment(key, VID, "480p", 7, body) == b"media bytes"
    for wrong in ((VID, "480p", 8), (VID, "360p", 7), ("f" * 32, "480p", 7)):
        with pytest.raises(InvalidTag):
            decrypt_segment(key, *wrong, body)
    with pytest.raises(InvalidTag):                      # the other variant's key
        decrypt_segment(keys.segment_key("video", "b", 7), VID, "480p", 7, body)
    # Renditions of one index share the key; audio has one variant whatever is asked.
    assert decrypt_segment(key, VID, "360p", 7, keys.encrypt("360p", "a", 7, b"x")) == b"x"
    assert keys.segment_key("audio", "a", 7) == keys.segment_key("audio", "b", 7) != keys.segment_key("video", "a", 7)
    cek, sid = b"c" * 32, "d" * 32
    nonce, wrapped = media_crypto.wrap_segment_key(AESGCM(cek), sid, "video", 7, key)
    entry = {"index": 7, "nonce": session_crypto.b64url(nonce), "ciphertext": session_crypto.b64url(wrapped)}
    assert unwrap_segment_key(cek, sid, "video", entry) == key
    for args in ((cek, "e" * 32, "video", entry), (cek, sid, "audio", entry), (cek, sid, "video", {**entry, "index": 8}),
                 (b"x" * 32, sid, "video", entry)):
        with pytest.raises(InvalidTag):
            unwrap_segment_key(*args)


def test_keyed_names_hide_the_variant_and_match_the_url_shape():
    keys, _ = media_crypto.ContentSealer("m" * 43).new_secret(VID)
    a, b = keys.file_name("480p", "a", 3), keys.file_name("480p", "b", 3)
    assert a != b and media_crypto.FILE_NAME_RE.match(a) and a.startswith("00003-")
    assert keys.file_name("360p", "a", 3) not in (a, b)
    assert keys.file_name("audio", "a", 3) == keys.file_name("audio", "b", 3)
    assert parse_segment_url(f"http://x/media/{VID}/480p/{a}") == (VID, "480p", 3)
    for bad in (f"/media/{VID}/480p/00003.m4s", f"/media/{VID}/480P/{a}", f"/api/stream/m/{VID}/t/480p/{a}"):
        with pytest.raises(ValueError):
            parse_segment_url(bad)


def test_master_key_binds_sealed_values_to_session_and_role():
    m = session_crypto.MasterKey("m" * 43)
    sealed = m.seal(b"k" * 32, "a" * 32, "cek:0")
    assert m.open(sealed, "a" * 32, "cek:0") == b"k" * 32
    for sid, role in (("b" * 32, "cek:0"), ("a" * 32, "cek:1"), ("a" * 32, "kek")):
        with pytest.raises(InvalidTag):
            m.open(sealed, sid, role)
    assert m.media_token_ok("a" * 32, m.media_token("a" * 32))
    assert not m.media_token_ok("b" * 32, m.media_token("a" * 32))


META = {"duration": 5.0, "segment_count": 3, "segment_durations": [2.0, 2.0, 1.0], "fps": "30/1",
        "renditions": [{"name": "480p", "width": 854, "height": 480, "bandwidth": 1500000,
                        "average_bandwidth": 1400000, "codecs": "avc1.64001f"},
                       {"name": "360p", "width": 640, "height": 360, "bandwidth": 850000,
                        "average_bandwidth": 800000, "codecs": "avc1.64001e"}],
        "audio": {"codecs": "mp4a.40.2", "bandwidth": 128000, "segment_sizes": [1, 1, 1, 1],
                  "segment_durations": [2.005333, 2.005333, 0.95, 0.04]}}


def init_url(rendition: str) -> str:
    return f"/api/stream/m/s/t/{rendition}/init.mp4"


def segment_url(rendition: str, index: int) -> str:
    return f"/media/{VID}/{rendition}/{index:05d}-{'ab'[index % 2] * 32}.m4s"


def segment_urls(rendition: str, count: int) -> list[str]:
    return [segment_url(rendition, i) for i in range(count)]


@pytest.mark.parametrize("audio", [True, False])
def test_dash_manifest_lists_every_segment_url_and_no_variant(audio):
    meta = dict(META, audio=META["audio"] if audio else None)
    media = manifest.Media.from_row(VID, {"metadata": json.dumps(meta)})
    mpd = manifest.dash_mpd(media, init_url, segment_urls)
    reps = {r.id: r for r in parse_mpd(mpd, "http://x/api/stream/m/s/t/manifest.mpd")}
    assert set(reps) == {"480p", "360p"} | ({"audio"} if audio else set())
    for rid in ("480p", "360p"):
        assert reps[rid].segment_urls == ["http://x" + segment_url(rid, i) for i in range(3)]
        assert reps[rid].init_url == "http://x" + init_url(rid)
    if audio:
        assert reps["audio"].segment_urls == ["http://x" + segment_url("audio", i) for i in range(4)]
    assert "/a/" not in mpd and "/b/" not in mpd


def test_hls_playlists():
    media = manifest.Media.from_row(VID, {"metadata": json.dumps(META)})
    master = manifest.hls_master(media)
    assert "480p/index.m3u8" in master and 'TYPE=AUDIO' in master
    playlist = manifest.hls_media(media, "480p", init_url, segment_urls)
    assert playlist.count("#EXTINF") == 3 and f'#EXT-X-MAP:URI="{init_url("480p")}"' in playlist
    assert [line for line in playlist.splitlines() if line.startswith("/media/")] == \
        [segment_url("480p", i) for i in range(3)]


def _package(src, out_dir, stream: str) -> tuple[bytes, list[bytes]]:
    """fMP4 init + segments of one stream of ``src``, cut as the media worker's packaging does."""
    import subprocess
    out_dir.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", f"0:{stream}", "-c", "copy", "-f", "hls",
                    "-hls_time", "2", "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod",
                    "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(out_dir / "%05d.m4s"),
                    str(out_dir / "index.m3u8")], check=True)
    return (out_dir / "init.mp4").read_bytes(), [p.read_bytes() for p in sorted(out_dir.glob("*.m4s"))]


def test_download_muxer_makes_one_playable_mp4(tmp_path):
    """streaming_svc.mp4mux: the two tracks' inits merged (or the video's alone), fragments
    renumbered and interleaved, samples untouched; ffprobe sees the streams and the duration,
    ffmpeg decodes every frame."""
    import subprocess
    from streaming_svc import mp4mux
    from svcommon.mp4boxes import walk_bytes
    src = tmp_path / "src.mp4"           # a key frame every 2 s, as the media worker encodes: two segments
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=4",
                    "-f", "lavfi", "-i", "sine=duration=4", "-c:a", "aac", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", "60", "-pix_fmt", "yuv420p", str(src)], check=True)
    vinit, vsegs = _package(src, tmp_path / "v", "v")
    ainit, asegs = _package(src, tmp_path / "a", "a")
    for audio in (True, False):
        order = mp4mux.interleaved([2.0] * len(vsegs), [2.0] * len(asegs) if audio else [])
        assert order[:2] == ([("video", 0), ("audio", 0)] if audio else [("video", 0), ("video", 1)])
        out = bytearray(mp4mux.merged_header(vinit, ainit if audio else None))
        for seq, (track, i) in enumerate(order, start=1):
            seg = (vsegs if track == "video" else asegs)[i]
            frag = mp4mux.fragment(seg, 1 if track == "video" else 2, seq)
            assert [b.kind for b in walk_bytes(frag)] == [b"moof", b"mdat"]
            assert frag.endswith(next(seg[b.start:b.end] for b in walk_bytes(seg) if b.kind == b"mdat"))
            assert struct.unpack_from(">I", frag, 8 + 8 + 4)[0] == seq                 # mfhd sequence number
            out += frag
        path = tmp_path / f"out-{audio}.mp4"
        path.write_bytes(bytes(out))
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                           str(path)], check=True, capture_output=True, text=True).stdout)
        assert sorted(s["codec_type"] for s in probe["streams"]) == (["audio", "video"] if audio else ["video"])
        assert abs(float(probe["format"]["duration"]) - 4) < 0.2
        decode = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
                                capture_output=True, text=True)
        assert decode.returncode == 0 and not decode.stderr, decode.stderr
    with pytest.raises(mp4mux.MuxError):
        mp4mux.fragment(b"\x00\x00\x00\x08free", 1, 1)
