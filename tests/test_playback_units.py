"""Pure pieces of playback, no services: the forensic codeword and metadata tag
(svcommon.codeword, a format the forensics work depends on), the session key math
(streaming_svc.session_crypto, checked against an independent implementation of docs/api.md's
derivation), and the per-session manifest."""
from __future__ import annotations

import json
import struct

import pytest
from cryptography.exceptions import InvalidTag

from svcommon import codeword
from streaming_svc import session_crypto, manifest
from tests.support.contract_client import decrypt_segment, parse_mpd, unwrap_cek

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


def test_key_exchange_and_segment_format_follow_the_contract():
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    priv = ec.generate_private_key(ec.SECP256R1())
    sid = "b" * 32
    hs = session_crypto.open_session(session_crypto.public_jwk(priv.public_key()), sid)
    kek = _client_side(hs.server_public_key, priv, sid)
    assert kek == hs.kek
    cek = unwrap_cek(kek, sid, hs.wrapped_cek)
    assert cek == hs.cek and len(cek) == 32
    body = session_crypto.encrypt_segment(AESGCM(cek), sid, "480p", 7, b"media bytes")
    assert decrypt_segment(cek, sid, "480p", 7, body) == b"media bytes"
    for wrong in ((sid, "480p", 8), (sid, "360p", 7), ("c" * 32, "480p", 7), (sid, "480p", "init")):
        with pytest.raises(InvalidTag):
            decrypt_segment(cek, *wrong, body)
    assert session_crypto.open_session(session_crypto.public_jwk(priv.public_key()), sid).cek != cek   # fresh per session


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


@pytest.mark.parametrize("audio", [True, False])
def test_dash_manifest_lists_every_segment_and_no_variant(audio):
    meta = dict(META, audio=META["audio"] if audio else None)
    media = manifest.Media.from_row("v" * 32, {"metadata": json.dumps(meta)})
    mpd = manifest.dash_mpd(media)
    reps = {r.id: r for r in parse_mpd(mpd, "http://x/api/stream/m/s/t/")}
    assert set(reps) == {"480p", "360p"} | ({"audio"} if audio else set())
    assert reps["480p"].segment_urls == [f"http://x/api/stream/m/s/t/480p/{i:05d}.m4s" for i in range(3)]
    assert reps["480p"].init_url == "http://x/api/stream/m/s/t/480p/init.mp4"
    if audio:
        assert len(reps["audio"].segment_urls) == 4
    assert "/a/" not in mpd and "/b/" not in mpd


def test_hls_playlists():
    media = manifest.Media.from_row("v" * 32, {"metadata": json.dumps(META)})
    master = manifest.hls_master(media)
    assert "480p/index.m3u8" in master and 'TYPE=AUDIO' in master
    playlist = manifest.hls_media(media, "480p")
    assert playlist.count("#EXTINF") == 3 and '#EXT-X-MAP:URI="init.mp4"' in playlist
