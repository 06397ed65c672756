// The watch page's "Playback security" panel, in plain language and live: filled from
// GET /api/stream/sessions/{sid}/security when a session opens, then kept current by every
// heartbeat (key epoch changes are logged as they happen; the session's state and renewal).
"use strict";
const SecurityPanel = (() => {
  const $ = (id) => document.getElementById(id);
  const clock = (iso) => (iso ? new Date(iso) : new Date()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const span = (s) => (s % 60 === 0 && s >= 60 ? `${s / 60} minute${s === 60 ? "" : "s"}` : `${s} second${s === 1 ? "" : "s"}`);
  let info = null, epoch = null;

  function li(list, text, cls) {
    const el = document.createElement("li");
    el.textContent = text;
    if (cls) el.className = cls;
    list.append(el);
    return el;
  }
  function log(text) {
    const list = $("sec-log");
    li(list, `${clock()} — ${text}`);
    while (list.children.length > 8) list.firstElementChild.remove();   // the recent changes only
  }
  function showEpoch(e) {
    const p = info.protections;
    $("sec-epoch").textContent = `Key #${e}. It changes every ${span(p.key_rotation_seconds)} without interrupting ` +
      `playback; the previous key keeps working ${span(p.key_grace_seconds)} longer.`;
  }

  function show(i) {
    const first = !info || info.session_id !== i.session_id;
    info = i;
    const d = i.device, p = i.protections;
    $("security-body").hidden = false;
    $("security-state").textContent = i.state === "live"
      ? "Protected and live: this session renews itself while the page is open and ends when you leave."
      : `This session has ${i.state}.`;
    const facts = [d.name || "Unknown browser", d.screen && `screen ${d.screen}`, d.timezone, d.language].filter(Boolean);
    $("sec-device").textContent = facts.join(" · ") + (d.this_device ? " (this browser)" : "");
    $("sec-key").textContent = `Fingerprint ${d.key_thumbprint.slice(0, 10)}… — made in this browser and impossible ` +
      "to copy out of it; every playback request is signed with it, so a stolen link or token is useless elsewhere.";
    $("sec-watermark").textContent = `${i.watermark_id.slice(0, 12)}… — an invisible mark in your copy that leads ` +
      "a leaked recording back to this session.";
    const list = $("sec-protections");
    list.replaceChildren();
    li(list, "Encrypted at rest: every piece of the video is stored encrypted (AES-256-GCM), each under its own key.");
    li(list, "Per-session keys: a one-time key exchange (ECDH P-256) gave this session its own key; it receives " +
       `only its own copy's keys, a few at a time (at most ${p.key_release_pacing.burst_seconds} s ahead at first, ` +
       "then about playback speed).");
    li(list, `Forensic watermark: ${p.forensic_watermark.codeword_length} segments carry this session's invisible ` +
       "A/B pattern, plus a signed tag in the file.");
    li(list, "Device binding: the session works only with this device's key (DPoP); the key never leaves the browser.");
    li(list, `Stream limit: your account can play on ${p.concurrent_stream_limit} screen` +
       `${p.concurrent_stream_limit === 1 ? "" : "s"} at once; closing this page frees this one at once.`);
    if (first) log(`session started with key #${i.key_epoch}`);
    epoch = i.key_epoch;
    showEpoch(epoch);
  }

  // A heartbeat answer: {expires_at, key_epoch, wrapped_cek?}.
  function heartbeat(r) {
    if (!info) return;
    if (r.key_epoch !== epoch) {
      log(`key changed: #${epoch} → #${r.key_epoch}`);
      epoch = r.key_epoch;
      showEpoch(epoch);
    }
    $("security-state").textContent = `Protected and live: renewed at ${clock()}, ` +
      "so the session stays open while you watch and ends when you leave.";
  }

  function ended(text) {
    if (info) $("security-state").textContent = text;
  }
  // Before any session: why none can start on this page.
  function unavailable(text) {
    $("security-state").textContent = text;
  }
  return { show, heartbeat, ended, unavailable };
})();
