"""Delivery v2 through the real stack (gateway cache, streaming-svc, file-svc over SeaweedFS,
MariaDB, the real media worker): media encrypted once at rest, shared cacheable URLs, keys
per session (docs/api.md, "Encrypted media", "Keys"). Expected values are computed from the
stored objects and the sealed content secret (svcommon.media_crypto with the stack's
MEDIA_MASTER_KEY), never from streaming-svc's code."""
from __future__ import annotations

import json
import random
import re
import subprocess

import pytest
import requests
from cryptography.exceptions import InvalidTag

from svcommon import codeword, mp4boxes
from svcommon.media_crypto import FILE_NAME_RE, decrypt_segment as server_decrypt
from svcommon.media_keys import audio_init_key, encrypted_segment_key, init_key
from tests.support.contract_client import ContractError, decrypt_segment, unwrap_segment_key
from tests.support.playback import backdate_session, events_of, refused_until, viewer
from tests.support.sealed_media import keys_of, media_row
from tests.support.videos import make_ready_video, sql

pytestmark = pytest.mark.heavy
FIRST_KEYS = 3          # FIRST_KEYS_COUNT
BURST, FACTOR = 120, 1.5  # KEY_BURST_SECONDS, KEY_PACE_FACTOR (the defaults; PLAYBACK_ENV keeps them)


@pytest.fixture(scope="module")
def vid(play, worker_app, mdb, stores, owner, clip):
    return make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Delivery v2 clip")


@pytest.fixture(scope="module")
def meta(mdb, vid):
    return media_row(mdb, vid)["metadata"]


@pytest.fixture(scope="module")
def content(mdb, vid, play):
    """Both variants' keys and names, from the sealed secret and the stack's master key."""
    assert media_row(mdb, vid)["delivery_version"] == 2
    return keys_of(mdb, play["env"]["MEDIA_MASTER_KEY"], vid)


@pytest.fixture
def client(play):
    return viewer(play["url"])[1]


def stored_plaintext(stores, content, rendition: str, variant: str, index: int) -> bytes:
    """What the pipeline made for (rendition, variant, index): the stored object, decrypted."""
    track = "audio" if rendition == "audio" else "video"
    body = stores["streaming"].get_bytes(encrypted_segment_key(content.video_id, rendition,
                                                               content.file_name(rendition, variant, index)))
    return server_decrypt(content.segment_key(track, variant, index), content.video_id, rendition, index, body)


def released(client, s, track: str, count: int) -> dict[int, bytes]:
    """Every key of ``track`` the session can get: the first ones plus the key endpoint's."""
    keys = {i: k for (t, i), k in s.keys.items() if t == track}
    start = 0
    while start < count:
        keys.update(client.fetch_keys(s, track, start, 16))
        start += 16
    return keys


def test_full_stream_decrypted_from_keys_is_the_sessions_variants(client, vid, meta, content, stores, tmp_path, play):
    s = client.open_session(vid)
    first = s.raw["keys"]
    assert first["key_epoch"] == 0 and [e["index"] for e in first["video"]] == list(range(FIRST_KEYS))
    assert [e["index"] for e in first["audio"]] == list(range(FIRST_KEYS))
    rendition = meta["renditions"][0]["name"]
    out = client.download(s, rendition, tmp_path / "leak.mp4", audio=True)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(out)],
        check=True, capture_output=True, text=True).stdout)
    v = probe["streams"][0]
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 854, 480)
    assert int(v["nb_read_frames"]) == round(meta["duration"] * meta["fps_float"])
    # Byte for byte: the per-session init (plaintext + the session's tag), then segment i of
    # the variant the session's codeword picks, as the pipeline encrypted it.
    secret = play["env"]["WATERMARK_SECRET"]
    init = stores["streaming"].get_bytes(init_key(vid, rendition))
    expected = init + codeword.build_tag_box(secret, s.id, codeword.find_tags(secret, out.read_bytes())[0].issued_at)
    variants = [codeword.variant(secret, s.id, i) for i in range(meta["segment_count"])]
    expected += b"".join(stored_plaintext(stores, content, rendition, v, i) for i, v in enumerate(variants))
    assert out.read_bytes() == expected
    assert [(t.session_id, t.valid) for t in codeword.find_tags(secret, expected)] == [(s.id, True)]
    audio = out.with_suffix(".audio.mp4").read_bytes()
    count = len(meta["audio"]["segment_durations"])
    assert audio.startswith(stores["streaming"].get_bytes(audio_init_key(vid)))
    assert audio.endswith(b"".join(stored_plaintext(stores, content, "audio", "-", i) for i in range(count)))
    # The variants differ (else the check above would prove little).
    assert stored_plaintext(stores, content, rendition, "a", 1) != stored_plaintext(stores, content, rendition, "b", 1)


def test_another_sessions_keys_do_not_open_this_sessions_variants(client, vid, meta, play):
    secret = play["env"]["WATERMARK_SECRET"]
    a = client.open_session(vid)
    while True:                      # a session whose codeword differs from a's somewhere (1/32 per try)
        b = client.open_session(vid)
        differ = [i for i in range(meta["segment_count"])
                  if codeword.variant(secret, a.id, i) != codeword.variant(secret, b.id, i)]
        if differ:
            break
        client.end(b)
    rep_a = client.representations(a)[0]
    i = differ[0]
    body = requests.get(rep_a.segment_urls[i]).content
    key_a, key_b = client.segment_key(a, "video", i), client.segment_key(b, "video", i)
    assert decrypt_segment(key_a, vid, rep_a.id, i, body)
    with pytest.raises(InvalidTag):
        decrypt_segment(key_b, vid, rep_a.id, i, body)
    with pytest.raises(InvalidTag):                       # nor a's key at another index or rendition
        decrypt_segment(key_a, vid, rep_a.id, i + 1, body)
    # A wrapped key opens only under its own session's CEK, session id and index.
    entry = b.raw["keys"]["video"][0]
    with pytest.raises(InvalidTag):
        unwrap_segment_key(a.ceks[0], a.id, "video", entry)
    with pytest.raises(InvalidTag):
        unwrap_segment_key(b.ceks[0], a.id, "video", entry)
    with pytest.raises(InvalidTag):
        unwrap_segment_key(b.ceks[0], b.id, "video", {**entry, "index": 1})
    with pytest.raises(InvalidTag):
        unwrap_segment_key(b.ceks[0], b.id, "audio", entry)
    # Nor can a session ask for keys with another session's id (it is bound to its device).
    other = viewer(play["url"])[1]
    with pytest.raises(ContractError) as err:
        other.request_keys(a, "video", 0, 4)
    assert err.value.status == 404


def test_keys_of_the_other_variant_are_never_released(client, vid, meta, content, play):
    secret = play["env"]["WATERMARK_SECRET"]
    s = client.open_session(vid)
    n = meta["segment_count"]
    keys = released(client, s, "video", n)
    assert sorted(keys) == list(range(n))
    for i, key in keys.items():
        own = codeword.variant(secret, s.id, i)
        other = "b" if own == "a" else "a"
        assert key == content.segment_key("video", own, i), i
        assert key != content.segment_key("video", other, i)
    audio = released(client, s, "audio", len(meta["audio"]["segment_durations"]))
    assert all(k == content.segment_key("audio", "-", i) for i, k in audio.items())
    # The manifest names exactly the session's variants (and the HLS playlists the same URLs).
    mpd = requests.get(s.manifest_url).text
    for r in meta["renditions"]:
        for i in range(n):
            own = codeword.variant(secret, s.id, i)
            assert f"/media/{vid}/{r['name']}/{content.file_name(r['name'], own, i)}" in mpd
            assert content.file_name(r["name"], "b" if own == "a" else "a", i) not in mpd
    first = meta["renditions"][0]["name"]
    hls = requests.get(s.manifest_url.replace("manifest.mpd", f"{first}/index.m3u8")).text
    dash = {r.id: r for r in client.representations(s)}[first]
    assert [play["url"] + line for line in hls.splitlines() if line.startswith("/media/")] == dash.segment_urls


def test_urls_of_two_sessions_coincide_exactly_where_codewords_agree(client, vid, meta, play):
    secret = play["env"]["WATERMARK_SECRET"]
    a = client.open_session(vid)
    bits = lambda s: [codeword.codeword_bit(secret, s.id, i) for i in range(meta["segment_count"])]  # noqa: E731
    while True:                      # both agreement and disagreement somewhere (1/16 to miss per try)
        b = client.open_session(vid)
        if len({x == y for x, y in zip(bits(a), bits(b))}) == 2:
            break
        client.end(b)
    ra = {r.id: r for r in client.representations(a)}
    rb = {r.id: r for r in client.representations(b)}
    for rid, rep in ra.items():
        if rid == "audio":
            assert rep.segment_urls == rb[rid].segment_urls      # one audio variant: always shared
            continue
        same = [ua == ub for ua, ub in zip(rep.segment_urls, rb[rid].segment_urls)]
        assert same == [x == y for x, y in zip(bits(a), bits(b))], rid
    assert ra[next(iter(ra))].init_url != rb[next(iter(rb))].init_url   # inits carry the session's tag
    text = requests.get(a.manifest_url).text
    assert "/a/" not in text and "/b/" not in text and "variant" not in text


def test_segment_urls_are_public_cacheable_ciphertext(client, vid):
    s = client.open_session(vid)
    url = client.representations(s)[0].segment_urls[1]
    first, again = requests.get(url), requests.get(url)
    for r in (first, again):
        assert r.status_code == 200 and "Set-Cookie" not in r.headers
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert again.headers["X-Cache-Status"] == "HIT" and first.headers["ETag"] == again.headers["ETag"]
    assert first.content == again.content
    ranged = requests.get(url, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == first.content[:100]
    assert requests.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    missing = url.rsplit("/", 1)[0] + "/00001-" + "0" * 32 + ".m4s"
    r = requests.get(missing)
    assert r.status_code == 404 and r.json()["code"] == "not_found" and "no-store" in r.headers["Cache-Control"]
    # A session that has ended still sees public ciphertext, but gets no more keys.
    client.end(s)
    assert requests.get(url).status_code == 200
    err = refused_until(lambda: client.request_keys(s, "video", 0, 4))
    assert (err.status, err.code) == (410, "session_ended")


def test_manifests_are_compressed_for_clients_that_ask_and_nothing_else_is(client, vid):
    """The gateway gzips a session's manifest and playlists (a long video's list of segment
    URLs is megabytes), never its media, init segments or JSON answers."""
    s = client.open_session(vid)
    plain = requests.get(s.manifest_url, headers={"Accept-Encoding": "identity"})
    packed = requests.get(s.manifest_url, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert packed.text == plain.text          # (requests decodes it)
    rep = client.representations(s)[0]
    playlist = requests.get(s.manifest_url.replace("manifest.mpd", f"{rep.id}/index.m3u8"),
                            headers={"Accept-Encoding": "gzip"})
    assert playlist.status_code == 200 and playlist.headers["Content-Encoding"] == "gzip"
    assert playlist.text.startswith("#EXTM3U") and rep.segment_urls[0].split("/media/")[1] in playlist.text
    for url in (rep.init_url, rep.segment_urls[0]):
        r = requests.get(url, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and "Content-Encoding" not in r.headers, url
    url = f"{client.gateway}/api/stream/sessions/{s.id}/keys"
    r = client.call("POST", url, {"track": "video", "from": 0, "count": 1},
                    headers={**client.dpop_headers("POST", url), "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers


def test_pacing_refuses_a_ripping_loop(play, vid, meta, mdb):
    user, c = viewer(play["url"], "ripper")
    s = c.open_session(vid)
    n = meta["segment_count"]
    refused = None
    for _ in range(BURST // 2):      # every key of the video, again and again, with no time passing
        r = c.request_keys(s, "video", 0, 16, expect=None)
        if r.status_code != 200:
            refused = r
            break
        assert [k["index"] for k in r.json()["keys"]] == list(range(n))
    assert refused is not None and refused.status_code == 429, "the loop was never refused"
    assert refused.json()["code"] == "key_pace_exceeded"
    wait = int(refused.headers["Retry-After"])
    assert wait >= 1
    assert events_of(mdb, user["id"], "key_pace_exceeded") == 1
    admin = requests.post(f"{play['url']}/api/auth/login", json={"username": "admin",
                                                               "password": play["env"]["ADMIN_PASSWORD"]})
    console = requests.get(f"{play['url']}/api/admin/security/events", params={"kind": "key_pace_exceeded"},
                           headers={"Authorization": f"Bearer {admin.json()['access_token']}"}).json()["items"]
    assert any(s.id in e["detail"] for e in console), console
    # Audio has its own budget; and once Retry-After has passed (moved in the DB), keys flow again.
    assert c.request_keys(s, "audio", 0, 16, expect=None).status_code == 200
    backdate_session(mdb, s.id, "started_at", wait + 0.5)
    assert c.request_keys(s, "video", 0, 16, expect=None).status_code == 200


def test_pacing_lets_a_viewer_who_seeks_through(play, vid, meta, mdb):
    """A player that keeps no keys at all (the worst case) and seeks every 5 s of the
    session, asking each time for 8 segments from the new position, on both tracks."""
    user, c = viewer(play["url"], "seeker")
    s = c.open_session(vid)
    rng = random.Random(13)
    n, n_audio = meta["segment_count"], len(meta["audio"]["segment_durations"])
    for step in range(10):
        backdate_session(mdb, s.id, "started_at", 5 * step)
        for track, count in (("video", n), ("audio", n_audio)):
            start = rng.randrange(count)
            r = c.request_keys(s, track, start, 8, expect=None)
            assert r.status_code == 200, (step, track, r.status_code, r.text)
            assert [k["index"] for k in r.json()["keys"]] == list(range(start, min(count, start + 8)))
    assert events_of(mdb, user["id"], "key_pace_exceeded") == 0


def test_key_request_validation(client, vid, meta):
    s = client.open_session(vid)
    for body in ({"track": "subtitles", "from": 0, "count": 1}, {"track": "video", "from": -1, "count": 1},
                 {"track": "video", "from": 0, "count": 0}, {"track": "video", "from": 0, "count": 17},
                 {"track": "video", "from": "0", "count": 1}, {"track": "video", "from": True, "count": 1},
                 {"track": "video", "count": 1}):
        r = client.call("POST", f"/api/stream/sessions/{s.id}/keys", body, expect=None)
        assert r.status_code == 400 and r.json()["code"] == "invalid_input", (body, r.text)
    r = client.request_keys(s, "video", meta["segment_count"], 4, expect=None)
    assert r.status_code == 416 and r.json()["code"] == "range_not_satisfiable"
    r = client.request_keys(s, "video", meta["segment_count"] - 1, 16)
    assert [k["index"] for k in r.json()["keys"]] == [meta["segment_count"] - 1]      # clipped at the end
    assert "no-store" in r.headers["Cache-Control"]


def test_a_tardos_coded_video_serves_each_session_its_tardos_variants(client, play, worker_app, mdb, stores, owner,
                                                                      clip):
    """Processing gives a video of 600 segments or more the Tardos code (svcommon.codeword
    scheme_for; the clip is shorter, so its metadata is given the scheme as processing writes
    it). Then the keys released and the URLs listed follow the session's Tardos codeword."""
    secret = play["env"]["WATERMARK_SECRET"]
    vid = make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Tardos-coded clip")
    meta = media_row(mdb, vid)["metadata"]
    assert meta["codeword"] == {"scheme": codeword.UNIFORM}           # as processed: a short video
    meta["codeword"] = {"scheme": codeword.TARDOS}
    sql(mdb, "UPDATE video_media SET metadata = %s WHERE video_id = %s", (json.dumps(meta), vid))
    content = keys_of(mdb, play["env"]["MEDIA_MASTER_KEY"], vid)
    code, n = codeword.Code(codeword.TARDOS, vid), meta["segment_count"]
    while True:                      # a session whose two codewords differ (else this proves little)
        s = client.open_session(vid)
        tardos = [codeword.variant(secret, s.id, i, code) for i in range(n)]
        if tardos != [codeword.variant(secret, s.id, i) for i in range(n)]:
            break
        client.end(s)
    keys = released(client, s, "video", n)
    assert [keys[i] for i in range(n)] == [content.segment_key("video", v, i) for i, v in enumerate(tardos)]
    mpd = requests.get(s.manifest_url).text
    first = meta["renditions"][0]["name"]
    assert all(f"/media/{vid}/{first}/{content.file_name(first, v, i)}" in mpd for i, v in enumerate(tardos))


# Playable objects that are not delivery media, outside delivery v2's scope: the uploaded
# original (kept for reprocessing) and the forensic analysis proxy (the detector's low-res
# reference). Anything else holding media boxes fails the scan below.
# Objects that hold media but are not delivered: what uploaders sent (the original; test
# helpers store some as "source"), the forensic analysis proxy, and suspect copies an admin
# uploaded for a trace. Everything else that holds media samples fails the scan.
NOT_DELIVERY_MEDIA = (re.compile(r"^originals/[0-9a-f]{32}/(?:original|source)$"),
                      re.compile(r"^media/[0-9a-f]{32}/forensics/proxy\.mp4$"),
                      re.compile(r"^forensics/detections/[0-9a-f]{32}/suspect$"))


def test_s3_holds_no_plaintext_media(vid, stores, meta, content):
    """Every object in the bucket (file-svc's listing of each prefix objects can live under):
    no segment object is a readable fragment, media segments exist only under keyed names,
    and no other object holds media samples except NOT_DELIVERY_MEDIA."""
    store = stores["watermark"]      # the one service allowed to list originals/, media/ and forensics/
    scanned, segments = 0, 0
    for prefix in ("originals/", "media/", "forensics/"):
        for item in store.list(prefix):
            scanned += 1
            key = item["key"]
            kinds = {b.kind for b in mp4boxes.walk_bytes(store.get_bytes(key))}
            if key.endswith(".m4s"):
                segments += 1
                parts = key.split("/")
                assert parts[0] == "media" and parts[2] == "enc" and FILE_NAME_RE.match(parts[-1]), key
                assert not kinds & {b"moof", b"mdat", b"styp", b"sidx", b"ftyp"}, (key, kinds)
            elif kinds & {b"moof", b"mdat"}:
                assert any(r.match(key) for r in NOT_DELIVERY_MEDIA), (key, kinds)
    # This video alone: two variants per rendition per index, plus audio.
    own = len(meta["renditions"]) * 2 * meta["segment_count"] + len(meta["audio"]["segment_durations"])
    assert segments >= own and scanned > segments
    # And its objects decrypt under the keys derived from its sealed secret (they are real media).
    plain = stored_plaintext(stores, content, meta["renditions"][0]["name"], "a", 0)
    assert {b.kind for b in mp4boxes.walk_bytes(plain)} >= {b"moof", b"mdat"}
