// The browser's device identity (BRIEF "Device binding"): a non-extractable ECDSA P-256
// key made by WebCrypto and kept in IndexedDB (the CryptoKey object is stored, its private
// half can never be exported), DPoP proofs (RFC 9449) signed with it, and the
// device-bound access token from auth-svc (cnf.jkt), renewed before it expires. Times are the
// server's (SV.now()): a proof refused because this computer's clock is off is made again once
// the answer's Date header has set the clock right.
"use strict";
const Device = (() => {
  const DB = "streamvault-device", STORE = "keys", ID = "dpop-p256";
  const enc = new TextEncoder();
  const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const b64urlJSON = (o) => b64url(enc.encode(JSON.stringify(o)));

  function idb(mode, fn) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const tx = open.result.transaction(STORE, mode);
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => { open.result.close(); resolve(req && req.result); };
        tx.onerror = () => { open.result.close(); reject(tx.error); };
      };
    });
  }

  // WebCrypto exists only on secure pages (HTTPS, or this computer's own address): without it
  // nothing protected can be played or downloaded, which callers say as such.
  const secure = () => window.isSecureContext && !!(window.crypto && crypto.subtle);
  const insecure = () => Object.assign(new Error("This page needs HTTPS: browsers allow the encryption that " +
                                                 "protects videos only on secure pages."), { code: "insecure_page" });

  let keyPromise = null;
  function keyPair() {
    if (!secure()) return Promise.reject(insecure());
    if (!keyPromise) {
      keyPromise = (async () => {
        let kp = await idb("readonly", (s) => s.get(ID));
        if (!kp) {
          kp = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
          await idb("readwrite", (s) => s.put(kp, ID));
        }
        const jwk = await crypto.subtle.exportKey("jwk", kp.publicKey);   // public half only
        return { kp, jwk: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y } };
      })();
      keyPromise.catch(() => { keyPromise = null; });
    }
    return keyPromise;
  }

  async function proof(method, url, accessToken) {
    const { kp, jwk } = await keyPair();
    const htu = new URL(url, location.href);
    const claims = { jti: crypto.randomUUID(), htm: method, htu: htu.origin + htu.pathname,
                     iat: Math.floor(SV.now() / 1000) };   // the server's clock: svclient.js
    if (accessToken) claims.ath = b64url(await crypto.subtle.digest("SHA-256", enc.encode(accessToken)));
    const input = b64urlJSON({ typ: "dpop+jwt", alg: "ES256", jwk }) + "." + b64urlJSON(claims);
    // WebCrypto's ECDSA signature is r‖s (IEEE P1363), exactly the JWS ES256 encoding.
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, kp.privateKey, enc.encode(input));
    return input + "." + b64url(sig);
  }

  let token = null, tokenPromise = null;
  function fingerprint() {
    return { user_agent: navigator.userAgent.slice(0, 512), screen: `${screen.width}x${screen.height}`,
             timezone: (Intl.DateTimeFormat().resolvedOptions().timeZone || "").slice(0, 64),
             language: (navigator.language || "").slice(0, 35) };
  }
  async function fetchToken() {
    const path = "/api/auth/device-token";
    for (let attempt = 0; attempt < 2; attempt++) {
      const resp = await SV.send(path, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": SV.csrf(),
                   DPoP: await proof("POST", path) },
        body: JSON.stringify({ fingerprint: fingerprint() }) });
      if (resp.ok) {
        const t = await resp.json();
        return { value: t.access_token, deviceId: t.device_id, renewAt: Date.parse(t.expires_at) - 30000 };
      }
      const info = await resp.json().catch(() => ({}));
      if (resp.status === 401 && attempt === 0) {
        if (info.code === "invalid_dpop_proof" && SV.movedClock(resp)) continue;    // made again, on time
        if (info.code !== "invalid_dpop_proof") { await SV.refreshOrLogin(); continue; }
      }
      throw new SV.ApiError(resp.status, info.code || "device_token_failed", info.error || "Could not register this device.");
    }
  }
  // A device-bound token, renewed 30 s before expiry; concurrent callers share one request.
  async function accessToken(force = false) {
    if (!force && token && SV.now() < token.renewAt) return token.value;
    if (!tokenPromise) tokenPromise = fetchToken().finally(() => { tokenPromise = null; });
    token = await tokenPromise;
    return token.value;
  }
  // A stream API call: Authorization: DPoP <token> + a fresh proof; one retry with a new token.
  async function call(method, path, body) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const t = await accessToken(attempt > 0);
      const headers = { Authorization: "DPoP " + t, DPoP: await proof(method, path, t), Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const resp = await SV.send(path, { method, headers, credentials: "omit",
                                          body: body === undefined ? undefined : JSON.stringify(body) });
      const info = resp.status === 204 ? null : await resp.json().catch(() => ({}));
      if (resp.ok) return info;
      const retry = info.code === "token_expired" || info.code === "invalid_token"
        || (info.code === "invalid_dpop_proof" && SV.movedClock(resp));      // a proof made again, on time
      if (resp.status === 401 && attempt === 0 && retry) continue;
      throw new SV.ApiError(resp.status, info.code || "error", info.error || resp.statusText, resp.headers);
    }
  }
  return { keyPair, proof, accessToken, call, b64url, secure };
})();
