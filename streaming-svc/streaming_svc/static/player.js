// Secure playback (docs/api.md, streaming-svc): one POST opens a session with an ephemeral ECDH
// key exchange; the content key (CEK) is unwrapped inside WebCrypto as a non-extractable
// key; shaka-player fetches the per-session DASH manifest and every segment is decrypted
// in an async response filter (AES-256-GCM, AAD "{session}:{rendition}:{index}").
// Heartbeats renew the session and deliver the next key epoch; an expired or revoked
// session is replaced transparently at the current position.
"use strict";
(() => {
  const root = document.getElementById("watch");
  if (!root) return;
  const videoId = root.dataset.videoId;
  const video = document.getElementById("video");
  const playBtn = document.getElementById("play");
  const errorBox = document.getElementById("player-error");
  const securityBox = document.getElementById("security");
  const enc = new TextEncoder();
  const b64d = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const SEG_RE = /\/api\/stream\/m\/([0-9a-f]{32})\/[^/]+\/([^/]+)\/(?:init\.mp4|(\d{5})\.m4s)(?:[?#]|$)/;

  const sessions = new Map();   // session id -> {id, kek, keys: Map(epoch -> CryptoKey), epoch}
  let current = null, player = null, hbTimer = null, renewing = null, started = false;
  const stats = window.svPlayback = { sessions: 0, renewals: 0, decrypted: 0, epochs: new Set(), usedEpochs: new Set(),
                                   heartbeats: 0, errors: [] };

  function showError(msg) { errorBox.textContent = msg; errorBox.hidden = !msg; }

  async function unwrap(kek, sid, w) {
    return crypto.subtle.unwrapKey("raw", b64d(w.ciphertext), kek,
      { name: "AES-GCM", iv: b64d(w.nonce), additionalData: enc.encode(sid) },
      { name: "AES-GCM" }, false, ["decrypt"]);
  }

  async function openSession() {
    const eph = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    const pub = await crypto.subtle.exportKey("jwk", eph.publicKey);
    const r = await Device.call("POST", "/api/stream/sessions",
      { video_id: videoId, client_public_key: { kty: "EC", crv: "P-256", x: pub.x, y: pub.y } });
    const serverKey = await crypto.subtle.importKey("jwk", r.server_public_key,
      { name: "ECDH", namedCurve: "P-256" }, false, []);
    const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: serverKey }, eph.privateKey, 256);
    const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const kek = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: enc.encode(r.session_id), info: enc.encode("streamvault/kek/v1") },
      ikm, { name: "AES-GCM", length: 256 }, false, ["unwrapKey"]);
    const s = { id: r.session_id, kek, keys: new Map([[r.key_epoch, await unwrap(kek, r.session_id, r.wrapped_cek)]]),
                epoch: r.key_epoch, manifest: r.manifest_url, interval: r.heartbeat_interval || 30, closer: null };
    sessions.set(s.id, s);
    stats.sessions += 1; stats.epochs.add(r.key_epoch);
    current = s;
    prepareCloser(s);
    showSecurity(s);
    return s;
  }

  async function showSecurity(s) {
    try {
      const info = await Device.call("GET", `/api/stream/sessions/${s.id}/security`);
      securityBox.textContent = JSON.stringify(info, null, 2);
    } catch (e) { securityBox.textContent = "Unavailable: " + e.message; }
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
      const r = await Device.call("POST", `/api/stream/sessions/${s.id}/heartbeat`, { position: video.currentTime || 0 });
      if (r.wrapped_cek && !s.keys.has(r.key_epoch)) {
        s.keys.set(r.key_epoch, await unwrap(s.kek, s.id, r.wrapped_cek));
        stats.epochs.add(r.key_epoch);
        for (const e of s.keys.keys()) if (e < r.key_epoch - 1) s.keys.delete(e);
      }
      s.epoch = Math.max(s.epoch, r.key_epoch);
      stats.heartbeats += 1;
      prepareCloser(s);
    } catch (e) {
      if ([401, 403, 404, 410].includes(e.status)) await renew(e);
      else stats.errors.push("heartbeat: " + e.message);   // network blip: the next tick retries
    }
  }

  function scheduleHeartbeats(s) {
    clearInterval(hbTimer);
    hbTimer = setInterval(heartbeat, s.interval * 1000);
  }

  // Replace a dead session (expired, revoked, video changed) at the current position.
  function renew(reason) {
    if (!renewing) {
      renewing = (async () => {
        const at = video.currentTime, wasPlaying = !video.paused;
        if (reason && reason.code && ["private", "locked", "not_found", "unavailable", "video_unavailable",
                                      "device_revoked", "access_revoked", "account_disabled"].includes(reason.code)) {
          stop(reason.message); return;
        }
        const s = await openSession();
        stats.renewals += 1;
        await player.load(s.manifest, at);
        scheduleHeartbeats(s);
        if (wasPlaying) video.play().catch(() => {});
      })().catch((e) => { stop(e.message); }).finally(() => { renewing = null; });
    }
    return renewing;
  }

  function stop(message) {
    clearInterval(hbTimer);
    current = null;
    if (player) player.unload().catch(() => {});
    showError(message);
  }

  async function keyFor(s, epoch) {
    if (!s.keys.has(epoch) && s === current && epoch > s.epoch) await heartbeat();   // its key is on the way
    const key = s.keys.get(epoch);
    if (!key) throw new Error(`no key for epoch ${epoch} of session ${s.id}`);
    return key;
  }

  async function decryptResponse(type, response) {
    if (type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
    const m = SEG_RE.exec(response.uri);
    const s = m && sessions.get(m[1]);
    if (!s) throw new Error("segment from an unknown session");
    const index = m[3] === undefined ? "init" : String(parseInt(m[3], 10));
    const epoch = parseInt(response.headers["x-key-epoch"], 10);
    const data = shaka.util.BufferUtils.toUint8(response.data);
    const key = await keyFor(s, epoch);
    response.data = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: data.subarray(0, 12), additionalData: enc.encode(`${s.id}:${decodeURIComponent(m[2])}:${index}`) },
      key, data.subarray(12));
    stats.decrypted += 1;
    stats.usedEpochs.add(epoch);
  }

  async function setup() {
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) throw new Error("This browser cannot play StreamVault videos (no MSE).");
    player = new shaka.Player();
    await player.attach(video);
    player.configure({
      // A modest buffer: segments are encrypted per session, so fetching far ahead wastes work.
      streaming: { bufferingGoal: 10, rebufferingGoal: 0.5, bufferBehind: 30,
                   retryParameters: { maxAttempts: 3, baseDelay: 250, backoffFactor: 2, timeout: 20000 } },
      manifest: { retryParameters: { maxAttempts: 2, baseDelay: 250, backoffFactor: 2, timeout: 10000 } },
      abr: { enabled: true, defaultBandwidthEstimate: 3e6 },
    });
    const net = player.getNetworkingEngine();
    net.registerRequestFilter((type, request) => {
      if (type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
      const m = SEG_RE.exec(request.uris[0]);
      const s = m && sessions.get(m[1]);
      if (s) request.headers["X-Key-Epoch"] = String(s.epoch);   // the newest key we hold
    });
    net.registerResponseFilter(decryptResponse);
    player.addEventListener("error", (ev) => onError(ev.detail));
  }

  function onError(err) {
    stats.errors.push(`${err.code} ${JSON.stringify(err.data || []).slice(0, 200)}`);
    const status = err.code === shaka.util.Error.Code.BAD_HTTP_STATUS ? err.data[1] : 0;
    if ([401, 404, 410].includes(status)) { renew(); return; }
    if (err.severity === shaka.util.Error.Severity.CRITICAL) showError(`Playback failed (error ${err.code}). Reload the page to retry.`);
  }

  async function start() {
    if (started) return;
    started = true;
    playBtn.hidden = true;
    showError("");
    try {
      if (!player) await setup();
      const s = await openSession();
      await player.load(s.manifest);
      scheduleHeartbeats(s);
      video.addEventListener("playing", () => setTimeout(heartbeat, 1000), { once: true });   // counts the view
      await video.play();
    } catch (e) {
      started = false;
      playBtn.hidden = false;
      const msg = e instanceof SV.ApiError ? e.message : `Could not start playback: ${e.message || e}`;
      showError(msg);
      if (e.code === "locked") document.getElementById("unlock").hidden = false, playBtn.hidden = true;
    }
  }

  playBtn.addEventListener("click", start);
  Device.keyPair().then(() => Device.accessToken()).catch(() => {});   // warm up before the click

  window.addEventListener("pagehide", () => {
    clearInterval(hbTimer);
    for (const s of sessions.values()) {
      if (s.closer) fetch(s.closer.path, { method: "DELETE", headers: s.closer.headers, keepalive: true, credentials: "omit" });
    }
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
      playBtn.hidden = false;
      root.dataset.locked = "false";
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
})();
