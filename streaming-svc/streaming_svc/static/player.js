// Secure playback (docs/api.md, streaming-svc, delivery v2): one POST opens a session with an
// ephemeral ECDH key exchange; the content key (CEK) is unwrapped inside WebCrypto as a
// non-extractable key that can only unwrap. Segments are shared ciphertext (/media/…, cached
// by the gateway or a CDN); the session's own segment keys come wrapped under its CEK: the
// first ones with the session (no extra round trip before the first frame), the rest from
// POST …/keys, fetched a few segments ahead and shared by concurrent requests. shaka-player
// fetches the per-session DASH manifest; every media segment is decrypted in an async
// response filter (AES-256-GCM, AAD "streamvault/seg/v1:{video}:{rendition}:{index}"), init
// segments (per session, plaintext) pass through. Heartbeats renew the session and deliver
// the next key epoch; an expired or revoked session is replaced transparently. The viewer's
// side (controls, keyboard, menus, the error overlay) is player-ui.js; the session opens on the
// first play intent, and ends when the page is hidden for good (pagehide: a DELETE with
// keepalive, signed in advance), so a closed tab frees its place under the stream limit at once.
// The session's QoE (qoe.js) goes with heartbeats and with that DELETE; a heartbeat is sent as
// soon as the session has played long enough to count as a view, and every heartbeat's answer
// brings the video's view count, shown live under the title.
"use strict";
(() => {
  const root = document.getElementById("watch");
  if (!root) return;
  const videoId = root.dataset.videoId;
  const video = document.getElementById("video");
  const playBtn = document.getElementById("play");
  const enc = new TextEncoder();
  const b64d = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  // A shared segment URL names video, rendition and index (the rest of the name is keyed).
  const SEG_RE = /\/media\/([0-9a-f]{32})\/([a-z0-9]{1,16})\/(\d{5})-[0-9a-f]{32}\.m4s(?:[?#]|$)/;
  // Keys are released at most at 1.5x real time after a 120-s burst (the server's pacing), and
  // every key asked for counts, played or not. So a run of keys starts small wherever playback
  // lands after a seek (or starts other than at the session's first keys: openSession): 8
  // segments, what shaka fetches at once to fill its 10-s buffer
  // (the playhead's segment and the next 5 or 6), then 4 and 8 as playback goes on, and only a
  // run that keeps playing asks for 16 at a time (32 s: half the key traffic of 8). Before, a
  // seek cost 32 s of keys and the next run's 32 s at once, and a viewer clicking through a film
  // waited about 20 s per seek from the second one (429, Retry-After), recorded as a ripper.
  // KEYS_AHEAD: the next segment's key is asked for as soon as one is fetched (off the critical
  // path: the buffer holds 10 s); more ahead would start the next run during the buffer's fill.
  const KEY_RUN = [8, 4, 8, 16], KEYS_AHEAD = 1;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const noop = () => {};

  // session id -> {id, kek, ceks: Map(epoch -> CryptoKey), epoch, keys: Map("track:index" ->
  // Promise<{key, epoch}>), end: {track: segment count once known}, runs: {track: {next, step}}
  // (the key run that request runLength continues), paceUntil: {track: when a 429 said to retry},
  // wanted: {track: the index of the segment the player fetched last}}
  const sessions = new Map();
  let current = null, player = null, hbTimer = null, closerTimer = null, renewing = null, started = false;
  let resumeAt = 0;          // where a stopped playback continues (Try again after an error)
  let reconnecting = false, reconnectTimer = null, reconnectDelay = 0;   // connection trouble: see reconnect()
  const stats = window.svPlayback = { sessions: 0, renewals: 0, decrypted: 0, epochs: new Set(), usedEpochs: new Set(),
                                   heartbeats: 0, keysFromSession: 0, keysFetched: 0, keyRequests: 0, paceWaits: 0,
                                   ladderLoads: 0, storyboardsAdded: 0, errors: [] };

  const ui = PlayerUI.create({ video, onIntent: start, onRetry: () => (reconnecting ? resumeNow() : start()),
                              getPlayer: () => player, maxRate: parseFloat(root.dataset.maxRate) || 1.5 });
  const qoe = QoE.create(video);
  window.svQoE = qoe;               // for tests: what the next report would say
  window.svPlayer = () => player;   // for tests: the shaka player (variant tracks, active height)

  // The CEK can only unwrap segment keys; segment keys can only decrypt. Neither is extractable.
  async function unwrapCek(kek, sid, w) {
    return crypto.subtle.unwrapKey("raw", b64d(w.ciphertext), kek,
      { name: "AES-GCM", iv: b64d(w.nonce), additionalData: enc.encode(sid) },
      { name: "AES-GCM" }, false, ["unwrapKey"]);
  }

  function unwrapSegmentKey(s, track, epoch, entry) {
    return crypto.subtle.unwrapKey("raw", b64d(entry.ciphertext), s.ceks.get(epoch),
      { name: "AES-GCM", iv: b64d(entry.nonce),
        additionalData: enc.encode(`streamvault/segkey/v1:${s.id}:${track}:${entry.index}`) },
      { name: "AES-GCM" }, false, ["decrypt"]).then((key) => ({ key, epoch }));
  }

  function remember(s, id, pending) {
    pending.catch(() => { if (s.keys.get(id) === pending) s.keys.delete(id); });   // a later request retries
    s.keys.set(id, pending);
  }

  // ``play``: the session the player will load (current; its security panel shown); a
  // session only for a download is still ended on pagehide like every other.
  // ``play`` false: a session only to download the video (no keys; it takes no stream slot).
  async function openSession(play = true) {
    await Device.keyPair();               // (refuses at once on a page without WebCrypto)
    const eph = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    const pub = await crypto.subtle.exportKey("jwk", eph.publicKey);
    const r = await Device.call("POST", "/api/stream/sessions",
      { video_id: videoId, client_public_key: { kty: "EC", crv: "P-256", x: pub.x, y: pub.y },
        purpose: play ? "playback" : "download" });
    const serverKey = await crypto.subtle.importKey("jwk", r.server_public_key,
      { name: "ECDH", namedCurve: "P-256" }, false, []);
    const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: serverKey }, eph.privateKey, 256);
    const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const kek = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: enc.encode(r.session_id), info: enc.encode("streamvault/kek/v1") },
      ikm, { name: "AES-GCM", length: 256 }, false, ["unwrapKey"]);
    const s = { id: r.session_id, kek, ceks: new Map([[r.key_epoch, await unwrapCek(kek, r.session_id, r.wrapped_cek)]]),
                epoch: r.key_epoch, keys: new Map(), end: {}, runs: {}, paceUntil: {}, wanted: {}, manifest: r.manifest_url,
                interval: r.heartbeat_interval || 30, closer: null, viewAfter: r.view_after_seconds || 10,
                viewSent: false };
    // The first keys come with the session: the first segments decrypt with no extra round trip.
    const first = r.keys || {};
    for (const track of ["video", "audio"]) {
      const got = first[track] || [];
      for (const e of got) {
        remember(s, `${track}:${e.index}`, unwrapSegmentKey(s, track, first.key_epoch ?? r.key_epoch, e));
        stats.keysFromSession += 1;
      }
      // They start a run that plays on: the request from where they end asks for KEY_RUN's last
      // step at once, as before runs existed. Small first steps there doubled the key requests of
      // a session's first minute, and a crowd of 2000 viewers starting within 40 s stalled
      // (bench/delivery P7: 1966 stalled, 0 with one request of 16). A start elsewhere (a renewal,
      // Try again at the position) is a new run, like a seek.
      if (got.length) s.runs[track] = { next: Math.max(...got.map((e) => e.index)) + 1, step: KEY_RUN.length - 2 };
    }
    sessions.set(s.id, s);
    stats.sessions += 1; stats.epochs.add(r.key_epoch);
    prepareCloser(s);
    if (play) {
      current = s;
      showSecurity(s);
    }
    return s;
  }

  // The Download button (watch-page.js) downloads one of this page's sessions, whose tag and
  // A/B variants the file then carries: the one playing, or (``fresh``: each session may be
  // downloaded once) a new download-only one, which the server ends when the download starts.
  window.svSessionForDownload = async (fresh) => (!fresh && current ? current : await openSession(false)).id;

  async function showSecurity(s) {
    try {
      SecurityPanel.show(await Device.call("GET", `/api/stream/sessions/${s.id}/security`));
    } catch (e) { SecurityPanel.ended("Security details are unavailable right now: " + e.message); }
  }

  // A DELETE for pagehide must be ready in advance: signing is async and unload is not.
  async function prepareCloser(s) {
    try {
      const token = await Device.accessToken();
      const path = `/api/stream/sessions/${s.id}`;
      s.closer = { path, headers: { Authorization: "DPoP " + token, DPoP: await Device.proof("DELETE", path, token) } };
    } catch (e) { s.closer = null; }
  }

  async function heartbeat() {
    const s = current;
    if (!s) return;
    try {
      const r = await Device.call("POST", `/api/stream/sessions/${s.id}/heartbeat`,
                                  { position: video.currentTime || 0, qoe: qoe.report() });
      if (typeof r.views === "number") showViews(r.views);
      if (r.renditions) offerNewRungs(s, r.renditions);
      if (r.storyboard_url) offerStoryboard(s, r.storyboard_url);
      if (r.wrapped_cek && !s.ceks.has(r.key_epoch)) {
        s.ceks.set(r.key_epoch, await unwrapCek(s.kek, s.id, r.wrapped_cek));
        stats.epochs.add(r.key_epoch);
        for (const e of s.ceks.keys()) if (e < r.key_epoch - 1) s.ceks.delete(e);
      }
      s.epoch = Math.max(s.epoch, r.key_epoch);
      stats.heartbeats += 1;
      if (s === current) SecurityPanel.heartbeat(r);
      prepareCloser(s);
    } catch (e) {
      if ([401, 403, 404, 410].includes(e.status)) await renew(e);
      else stats.errors.push("heartbeat: " + e.message);   // network blip: the next tick retries
    }
  }

  // A video becomes playable at its lowest rung and its higher rungs join as they finish
  // encoding, but shaka never re-reads a static manifest: a viewer who started early stayed at
  // the lowest rung to the end. Each heartbeat says which renditions the session's manifest
  // lists now; when it lists one the player lacks, the manifest is loaded again at the position
  // (same session, same keys). While playing that costs a hiccup of about 0.1 s (the buffer is
  // fetched again), worth it only where ABR plays the top rung it has (the network allows more);
  // otherwise it waits for a pause, or for ABR to reach the top. A viewer's own choice of rung
  // is kept. At most LADDER_TRIES loads per new set of renditions: a manifest served by another
  // process may lag the heartbeat's by a few seconds (its cache of a growing ladder).
  const LADDER_TRIES = 3;
  let newRungs = null, ladderLoading = false;
  function offerNewRungs(s, names) {
    newRungs = null;
    if (s !== current || !player || !started || renewing || reconnecting || ladderLoading) return;
    if (!player.getAssetUri()) return;
    const tracks = player.getVariantTracks();
    const loaded = new Set(tracks.map((t) => t.originalVideoId));
    if (names.every((n) => loaded.has(n))) return;
    const key = names.join(" ");
    if (s.ladder && s.ladder.key === key && s.ladder.tries >= LADDER_TRIES) return;
    const active = tracks.find((t) => t.active), abr = player.getConfiguration().abr.enabled;
    const top = Math.max(...tracks.map((t) => t.height || 0));
    const playing = !video.paused && !video.ended;
    if ((playing && !(abr && active && active.height === top)) || video.duration - video.currentTime < 12) {
      newRungs = names;              // offered at a pause (or when ABR reaches the top), not now
      return;
    }
    s.ladder = { key, tries: (s.ladder && s.ladder.key === key ? s.ladder.tries : 0) + 1 };
    loadLadder(s, playing, abr ? null : active && active.height);
  }
  async function loadLadder(s, playing, pinnedHeight) {
    ladderLoading = true;
    // (shaka holds the rate at 0 while it buffers; its unload resets it to the default rate)
    const at = video.currentTime, rate = video.playbackRate || video.defaultPlaybackRate || 1;
    const text = player.isTextTrackVisible() ? player.getTextTracks().find((t) => t.active) : null;
    qoe.reloading();
    try {
      await player.load(s.manifest, at);
      stats.ladderLoads += 1;
      if (video.playbackRate !== rate) video.playbackRate = rate;
      const pin = pinnedHeight && player.getVariantTracks().find((t) => t.height === pinnedHeight);
      if (pin) player.selectVariantTrack(pin, true);
      const same = text && player.getTextTracks().find((t) => t.language === text.language && t.label === text.label);
      if (same) { player.selectTextTrack(same); player.setTextTrackVisibility(true); }
      if (playing) video.play().catch(noop);
      // Why the picture paused a moment.
      ui.hint(`Now up to ${Math.max(...player.getVariantTracks().map((t) => t.height || 0))}p`);
    } catch (e) {
      if (e.code === shaka.util.Error.Code.LOAD_INTERRUPTED || s !== current) return;   // a renewal's load won
      if (sessionGone(e)) renew(); else stop(viewerError(e), true);
    } finally {
      ladderLoading = false;
    }
  }
  // The storyboard (seek previews) is made after the ladder, so a session opened before had
  // none in its manifest; when a heartbeat names it, it is added as a thumbnails track, with no
  // reload (a ladder reload or a renewal brings it in its manifest). At most STORYBOARD_TRIES
  // tries: a failed one is recorded and playback goes on without previews.
  const STORYBOARD_TRIES = 3;
  async function offerStoryboard(s, url) {
    if (s !== current || !player || !player.getAssetUri() || ladderLoading || renewing) return;
    if (player.getImageTracks().length || s.storyboardBusy || (s.storyboardTries || 0) >= STORYBOARD_TRIES) return;
    s.storyboardBusy = true;
    s.storyboardTries = (s.storyboardTries || 0) + 1;
    try {
      await player.addThumbnailsTrack(url, "text/vtt");
      stats.storyboardsAdded += 1;
    } catch (e) {
      stats.errors.push("storyboard: " + (e.message || e.code));   // the video plays on without previews
    } finally {
      s.storyboardBusy = false;
    }
  }
  const offerPending = () => { if (newRungs && current) offerNewRungs(current, newRungs); };
  video.addEventListener("pause", offerPending);

  function scheduleHeartbeats(s) {
    clearInterval(hbTimer); clearInterval(closerTimer);
    hbTimer = setInterval(heartbeat, s.interval * 1000);
    // The closer's token and proof must still be good when the page goes: sign a new one often.
    closerTimer = setInterval(() => { if (current) prepareCloser(current); }, Math.min(15, s.interval) * 1000);
  }

  // Best effort: a session we give up on stops counting against the stream limit now.
  function endSession(s) {
    sessions.delete(s.id);
    Device.call("DELETE", `/api/stream/sessions/${s.id}`, s === current ? { qoe: qoe.report() } : undefined).catch(noop);
  }

  function showViews(n) {
    const el = document.getElementById("views");
    const text = `${n} ${n === 1 ? "view" : "views"}`;
    if (el && el.textContent !== text) el.textContent = text;
  }

  // Once the session has played long enough to be a view, say so now rather than at the next
  // heartbeat: the count under the title goes up while the viewer watches.
  video.addEventListener("timeupdate", () => {
    const s = current;
    if (s && !s.viewSent && qoe.watchMs() >= s.viewAfter * 1000) { s.viewSent = true; heartbeat(); }
  });

  // Replace a dead session (expired, revoked, video changed) at the current position.
  function renew(reason) {
    if (!renewing) {
      renewing = (async () => {
        const at = video.currentTime, wasPlaying = !video.paused, old = current;
        if (reason && reason.code && ["private", "locked", "not_found", "unavailable", "video_unavailable",
                                      "device_revoked", "access_revoked", "account_disabled"].includes(reason.code)) {
          stop(reason, false); return;
        }
        const s = await openSession();
        qoe.renewed();
        if (old) sessions.delete(old.id);     // dead already: nothing to close on pagehide
        stats.renewals += 1;
        await player.load(s.manifest, at);
        scheduleHeartbeats(s);
        if (wasPlaying) video.play().catch(() => {});
      })().catch((e) => { stop(e, true); }).finally(() => { renewing = null; });
    }
    return renewing;
  }

  // Playback cannot go on: say why on the video (never a silent reset) and keep the position,
  // so Try again continues there. ``live``: the session may still be open, so end it.
  function stop(err, live) {
    clearInterval(hbTimer); clearInterval(closerTimer);
    if (current && live) endSession(current);
    resumeAt = video.currentTime || resumeAt;
    current = null;
    started = false;
    ui.setLoaded(null);
    if (player) player.unload().catch(noop);
    ui.error(err);
    SecurityPanel.ended("Not playing: " + PlayerUI.explain(err).title.toLowerCase() + ".");
  }

  // A shaka error as the viewer's error: network trouble is said so, the rest by its code.
  function viewerError(e) {
    if (!(e instanceof shaka.util.Error)) return e;
    if (e.category === shaka.util.Error.Category.NETWORK) return { network: true, code: "network", message: `network error ${e.code}` };
    return new Error(`The video could not be played (error ${e.code}).`);
  }

  // How many keys the request from ``from`` asks for: the next step of the track's run when it
  // continues the last request, else a new run (a seek, or the start after the first keys).
  function runLength(s, track, from) {
    const run = s.runs[track];
    const step = run && run.next === from ? Math.min(run.step + 1, KEY_RUN.length - 1) : 0;
    s.runs[track] = { next: from + KEY_RUN[step], step };
    return KEY_RUN[step];
  }

  // One POST …/keys for the run's next keys from ``from``; every index it covers gets the same
  // pending promise, so concurrent segment requests share one key request.
  // ``ahead``: asked for before any segment needs it (keyFor). Such a request that waited for
  // the pace and is no longer near the segment the player fetched last (the viewer seeked
  // away meanwhile) is dropped: sent, it would spend the budget on keys nobody plays.
  function requestKeys(s, track, from, ahead = false) {
    const count = runLength(s, track, from);
    const batch = (async () => {
      for (let attempt = 0; ; attempt++) {
        let r;
        // A track told to wait (429) sends nothing until then: a request sent meanwhile would
        // only be refused too.
        for (let wait; (wait = (s.paceUntil[track] || 0) - performance.now()) > 0;) await sleep(wait);
        const wanted = s.wanted[track] ?? from;
        if (ahead && (wanted < from - KEYS_AHEAD - 1 || wanted >= from + count)) {
          throw Object.assign(new Error("keys no longer needed (the viewer seeked away)"), { code: "not_needed" });
        }
        try {
          stats.keyRequests += 1;
          r = await Device.call("POST", `/api/stream/sessions/${s.id}/keys`,
                                { track, from, count, key_epoch: s.epoch });
        } catch (e) {
          if (e.status === 429 && e.code === "key_pace_exceeded") {   // ahead of real time: wait as told
            stats.paceWaits += 1;
            const until = performance.now() + 1000 * Math.max(1, parseInt(e.headers && e.headers.get("Retry-After"), 10) || 1);
            s.paceUntil[track] = Math.max(s.paceUntil[track] || 0, until);
            continue;
          }
          if (e.status === 416) s.end[track] = Math.min(s.end[track] ?? Infinity, from);
          throw e;
        }
        if (!s.ceks.has(r.key_epoch) && attempt < 2) { await heartbeat(); continue; }   // it brings that CEK
        if (r.keys.length < count) s.end[track] = from + r.keys.length;     // clipped at the end
        stats.keysFetched += r.keys.length;
        return r;
      }
    })();
    batch.catch(noop);
    for (let i = from; i < from + count; i++) {
      const id = `${track}:${i}`;
      if (s.keys.has(id)) continue;
      remember(s, id, batch.then((r) => {
        const entry = r.keys.find((e) => e.index === i);
        if (!entry) throw new Error(`no key for ${track} segment ${i}`);
        return unwrapSegmentKey(s, track, r.key_epoch, entry);
      }));
    }
  }

  function keyFor(s, track, index) {
    s.wanted[track] = index;
    if (!s.keys.has(`${track}:${index}`)) requestKeys(s, track, index);
    // Keep KEYS_AHEAD keys ahead of what is being buffered, in one request when some are missing.
    for (let j = index + 1; j <= index + KEYS_AHEAD && j < (s.end[track] ?? Infinity); j++) {
      if (!s.keys.has(`${track}:${j}`)) { requestKeys(s, track, j, true); break; }
    }
    return s.keys.get(`${track}:${index}`);
  }

  async function decryptResponse(type, response) {
    if (type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
    const m = SEG_RE.exec(response.uri);
    if (!m) return;                       // an init segment: per session, plaintext (codec setup only)
    const s = current;
    if (!s) throw new Error("no playback session");
    const rendition = m[2], index = parseInt(m[3], 10), track = rendition === "audio" ? "audio" : "video";
    let got;
    try {
      got = await keyFor(s, track, index);
    } catch (e) {
      if ([401, 403, 404, 410].includes(e.status)) renew(e);
      throw e;
    }
    const data = shaka.util.BufferUtils.toUint8(response.data);
    response.data = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: data.subarray(0, 12), additionalData: enc.encode(`streamvault/seg/v1:${m[1]}:${rendition}:${index}`) },
      got.key, data.subarray(12));
    stats.decrypted += 1;
    stats.usedEpochs.add(got.epoch);
  }

  async function setup() {
    player = new shaka.Player();
    await player.attach(video);
    player.configure({
      // A modest buffer: keys are released at about real time (plus a burst), so buffering far
      // ahead would only wait on the pacing limit. No segment prefetch: with it, a manual rung
      // switch (clearBuffer) followed by a seek froze the picture for good (the new rung's init
      // segment was never appended; 4 of 4 runs froze, 0 of 3 without prefetch, shaka 4.16).
      streaming: { bufferingGoal: 10, rebufferingGoal: 0.5, bufferBehind: 30, segmentPrefetchLimit: 0,
                   retryParameters: { maxAttempts: 3, baseDelay: 250, backoffFactor: 2, timeout: 20000 } },
      manifest: { retryParameters: { maxAttempts: 2, baseDelay: 250, backoffFactor: 2, timeout: 10000 } },
      abr: { enabled: true, defaultBandwidthEstimate: 3e6 },
    });
    player.getNetworkingEngine().registerResponseFilter(decryptResponse);
    player.addEventListener("error", (ev) => onError(ev.detail));
    const variantNow = () => { const t = player.getVariantTracks().find((v) => v.active); qoe.variant(t && t.videoId); };
    player.addEventListener("adaptation", variantNow);
    player.addEventListener("variantchanged", variantNow);
    player.addEventListener("adaptation", offerPending);     // ABR may have reached the top rung
  }

  // A shaka request the session's server refused as unknown, unauthorised or ended: renew it.
  const sessionGone = (e) => e.code === shaka.util.Error.Code.BAD_HTTP_STATUS && [401, 404, 410].includes(e.data[1]);

  function onError(err) {
    stats.errors.push(`${err.code} ${JSON.stringify(err.data || []).slice(0, 200)}`);
    if (renewing) return;                 // the session is being replaced: its errors are moot
    if (sessionGone(err)) { renew(); return; }
    if (current && connectionTrouble(err)) { reconnect(viewerError(err)); return; }
    // Anything else that failed all its retries stalls a VOD stream for good, whatever its severity.
    const fatal = err.severity === shaka.util.Error.Severity.CRITICAL || err.category === shaka.util.Error.Category.NETWORK;
    if (fatal && current) stop(viewerError(err), true);
  }

  // A request that failed for the connection's sake (no answer, a timeout, the gateway or a
  // service away: 5xx), not a refusal: worth trying again as it is.
  function connectionTrouble(e) {
    if (e.network || e.status === 0 || e.status >= 500) return true;     // (e.network: SV.send)
    if (!(e instanceof shaka.util.Error) || e.category !== shaka.util.Error.Category.NETWORK) return false;
    const C = shaka.util.Error.Code;
    if (e.code === C.BAD_HTTP_STATUS) return e.data[1] >= 500;
    if (e.code === C.REQUEST_FILTER_ERROR || e.code === C.RESPONSE_FILTER_ERROR) return !!e.data[0] && connectionTrouble(e.data[0]);
    return e.code === C.HTTP_ERROR || e.code === C.TIMEOUT;
  }

  // Connection trouble (a segment or its keys failed all their retries; the browser offline;
  // the gateway away): the session and the buffer are kept and playback resumes by itself,
  // at once when the browser is back online, else after a growing delay (2 s doubling to
  // 30 s); only a viewer left without picture sees the overlay, whose Try again resumes at
  // once. Before, playback stopped at the first failed segment with up to 10 s still
  // buffered, and waited for a click. A session that expired meanwhile is renewed by the
  // first key request that finds it gone (decryptResponse).
  function reconnect(err) {
    reconnecting = true;
    clearTimeout(reconnectTimer);
    reconnectDelay = Math.min(30000, reconnectDelay ? 2 * reconnectDelay : 2000);
    reconnectTimer = setTimeout(resumeNow, reconnectDelay);
    if (stalled()) ui.error(err);
    // The panel said "Protected and live" until the next heartbeat; the next one that gets
    // through says it again.
    SecurityPanel.ended("Reconnecting: the connection was lost; this session goes on once it is back.");
  }
  function resumeNow() {
    clearTimeout(reconnectTimer); reconnectTimer = null;
    if (current && player && player.retryStreaming()) return;
    if (!started) start();                // nothing loaded (the first load failed): start afresh
  }
  function stalled() {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= video.currentTime + 0.1 && b.end(i) > video.currentTime + 0.5) return false;
    return true;
  }
  window.addEventListener("online", () => { if (reconnecting) resumeNow(); });   // shaka retries too
  video.addEventListener("waiting", () => { if (reconnecting && stalled()) ui.error(viewerError({ network: true })); });
  const reconnected = (ev) => {            // picture again (playing, or ready to if paused meanwhile)
    if (!reconnecting || (ev.type === "canplay" && stalled())) return;
    reconnecting = false; reconnectDelay = 0; clearTimeout(reconnectTimer);
    ui.clearError(["network", "offline"]);
  };
  video.addEventListener("playing", reconnected);
  video.addEventListener("canplay", reconnected);
  // The overlay is for a viewer left without picture. A failure reported while the buffer was
  // merely low (stalled() looks 0.5 s ahead) showed it over a picture that kept moving, and no
  // playing or canplay came to take it away (seen once in CI). Moving with buffer ahead, the
  // picture needs no overlay; reconnecting goes on (the buffer may still run out: waiting).
  video.addEventListener("timeupdate", () => {
    if (reconnecting && !video.paused && !video.seeking && !stalled()) ui.clearError(["network", "offline"]);
  });

  // The first play intent (any control, a click on the video, Space/K) opens the session.
  async function start() {
    if (started || root.dataset.locked === "true") return;
    started = true;
    ui.clearError();
    ui.starting(true);
    qoe.begin();
    let s = null;
    try {
      if (!player) await setup();
      s = await openSession();
      await player.load(s.manifest, resumeAt || null);
      scheduleHeartbeats(s);
      ui.setLoaded(player);
      video.addEventListener("playing", () => setTimeout(heartbeat, 1000), { once: true });   // reports the startup time
      video.play().catch(noop);     // a refused autoplay leaves the ▶ to press; errors come from shaka
    } catch (e) {
      started = false;
      if (s && current === s) { current = null; endSession(s); clearInterval(hbTimer); clearInterval(closerTimer); }
      if (e.code === "locked") {
        root.dataset.locked = "true";
        document.getElementById("unlock").hidden = false; playBtn.hidden = true;
      } else {
        if (connectionTrouble(e)) reconnect(viewerError(e));    // tried again by itself, the overlay meanwhile
        else ui.error(viewerError(e));
      }
    } finally {
      ui.starting(false);
    }
  }
  // WebCrypto (the device key, the key exchange, the segment keys) exists only on secure pages:
  // HTTPS, or this computer's own address. On plain HTTP from elsewhere nothing could play:
  // said at once, instead of a "connection problem" retried for ever.
  // Likewise a browser without Media Source Extensions (an old one: iPhones had none before
  // iOS 17.1): said at once, with what to use instead. No play intent starts anything then; the
  // rest of the page stays wired (pagehide still ends a download's session).
  shaka.polyfill.installAll();
  const cannotPlay = !Device.secure() ? ["insecure_page", "protected playback needs HTTPS."]
    : !shaka.Player.isBrowserSupported() ? ["unsupported_browser", "this browser cannot play protected videos."] : null;
  if (cannotPlay) {
    started = true;
    ui.error({ code: cannotPlay[0] });
    document.getElementById("ctl-play").disabled = true;     // as on a locked page: nothing to play
    SecurityPanel.unavailable("Not available on this page: " + cannotPlay[1]);
  } else {
    Device.keyPair().then(() => Device.accessToken()).catch(() => {});   // warm up before the click
  }

  // Leaving the page ends its sessions at once (a keepalive request outlives the page; a
  // beacon could not carry the DPoP headers). Hidden but not gone: sign a fresh closer now.
  window.addEventListener("pagehide", () => {
    clearInterval(hbTimer); clearInterval(closerTimer);
    for (const s of sessions.values()) {
      // The current session's final QoE report rides along (the proof signs method and URL, not the body).
      const body = s === current ? JSON.stringify({ qoe: qoe.report() }) : undefined;
      const headers = body ? { ...s.closer?.headers, "Content-Type": "application/json" } : s.closer?.headers;
      if (s.closer) fetch(s.closer.path, { method: "DELETE", headers, body, keepalive: true, credentials: "omit" }).catch(noop);
      s.closer = null;
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && current) prepareCloser(current);
  });
  // Back from the back/forward cache: the session was ended on pagehide; a heartbeat finds it
  // gone (410) and opens a new one at the same position.
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted && current) { scheduleHeartbeats(current); heartbeat(); }
  });

  const unlock = document.getElementById("unlock");
  unlock.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("unlock-error");
    err.hidden = true;
    try {
      await SV.api(`/api/videos/${encodeURIComponent(videoId)}/unlock`, { method: "POST",
        body: { password: document.getElementById("video-password").value } });
      unlock.hidden = true;
      playBtn.hidden = !!cannotPlay;
      document.getElementById("ctl-play").disabled = !!cannotPlay;
      root.dataset.locked = "false";
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
})();
