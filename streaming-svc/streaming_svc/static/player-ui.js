// The player's own controls (player.js drives the session and shaka-player; this file is the
// viewer's side of it). Own controls rather than shaka's UI: the first play intent must open a
// device-bound session before anything loads (shaka's UI assumes loaded content), errors must
// become our overlay with what to do, and our keyboard map (space/k, arrows, f, m, c) must work
// from the whole page. Every way to play — the big ▶, the bar's ▶, a click on the video, Space —
// goes through one `toggle()`. Speed menu: the rates the key pace sustains; quality menu: Auto +
// each rung of shaka's variant tracks; captions
// menu: shaka's text tracks ("No captions" when none); seek-bar preview: time always, and the
// storyboard tile under the pointer when the manifest has an image track (`storyboardAt`: the
// DASH-IF thumbnail AdaptationSet, sprites under the session's own path).
"use strict";
const PlayerUI = (() => {
  const $ = (id) => document.getElementById(id);
  const fmt = (t) => {
    t = Math.max(0, Math.floor(t || 0));
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = String(t % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  };
  const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

  // What an error means to the viewer and what they can do about it.
  function explain(err) {
    const code = err && err.code;
    if (code === "stream_limit") return { title: "Too many screens", text: err.message, retry: true, help: true };
    if (code === "session_expired" || code === "session_ended")
      return { title: "Playback stopped", text: "Your playback session ended. Try again to continue where you were.", retry: true };
    if (["access_revoked", "account_disabled", "device_revoked", "private", "not_found", "unavailable",
         "video_unavailable", "gone_meanwhile"].includes(code))
      return { title: "You can't watch this video now", text: err.message, library: true };
    if (code === "locked") return { title: "Password needed", text: err.message };
    if (code === "media_converting") return { title: "Almost ready", text: err.message, retry: true };
    // Connection trouble is retried by itself (player.js reconnect): the overlay says so.
    if (code === "insecure_page")
      return { title: "This page needs HTTPS", text: "Browsers allow the encryption that protects this video only on " +
               "secure pages. Open this address with https:// instead of http://; if the site has no https address, " +
               "ask its administrator to turn HTTPS on." };
    if (code === "unsupported_browser")
      return { title: "This browser can't play these videos", text: "Protected videos need Media Source Extensions, " +
               "which this browser lacks. Open this page in a current version of Chrome, Edge, Firefox or Safari." };
    if (err && (err.network || err.status === 0 || err.status >= 502)) {
      if (navigator.onLine === false)
        return { title: "You're offline", text: "Playback continues where it stopped as soon as you're back online.",
                 retry: true, code: "offline" };
      return { title: "Connection problem", text: "The video could not be loaded. Trying again by itself; playback " +
               "continues where it stopped. If this lasts, check your internet connection.", retry: true, code: "network" };
    }
    return { title: "Playback failed", text: (err && err.message) || "Something went wrong.", retry: true };
  }

  // Playback speeds offered, up to what the key pace sustains (``maxRate``, the server's
  // KEY_PACE_FACTOR: keys are released at that many media seconds per second after a burst).
  const RATES = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

  function create({ video, onIntent, onRetry, getPlayer, maxRate = 1.5 }) {
    const player = $("player"), stage = $("stage"), bigPlay = $("play"), ctlPlay = $("ctl-play");
    const seek = $("seek"), time = $("time"), mute = $("ctl-mute"), volume = $("volume");
    const overlay = $("overlay"), hintEl = $("hint"), preview = $("preview");
    const qBtn = $("ctl-quality"), qMenu = $("quality-menu"), cBtn = $("ctl-captions"), cMenu = $("captions-menu");
    const sBtn = $("ctl-speed"), sMenu = $("speed-menu");
    let loaded = false, dragging = false, hintTimer = null;

    function hint(text, ms = 1500) {
      hintEl.textContent = text;
      hintEl.hidden = false;
      SV.announce(text);
      clearTimeout(hintTimer);
      hintTimer = setTimeout(() => { hintEl.hidden = true; }, ms);
    }

    // ---- play / pause: one path for every control, the video itself and the keyboard ----------
    function toggle() {
      if (!overlay.hidden) return;                       // the overlay says what to do first
      if (!loaded) { onIntent(); return; }               // the first intent opens the session
      if (video.paused || video.ended) video.play().catch(() => {}); else video.pause();
      syncPlay();        // paused changes at once, its events are queued: the label follows now
    }
    function syncPlay() {
      const playing = !video.paused && !video.ended;
      ctlPlay.dataset.state = playing ? "playing" : "paused";
      ctlPlay.setAttribute("aria-label", playing ? "Pause" : "Play");
      if (loaded) bigPlay.hidden = playing || !overlay.hidden;
    }
    bigPlay.addEventListener("click", toggle);
    ctlPlay.addEventListener("click", toggle);
    video.addEventListener("click", toggle);
    video.addEventListener("dblclick", () => fullscreen());
    for (const ev of ["play", "pause", "playing", "ended"]) video.addEventListener(ev, syncPlay);

    // ---- seek bar, time, volume ------------------------------------------------------------
    // Until the stream's metadata arrives, the length the server knows (not "0:00 / 0:00").
    const knownDuration = parseFloat(time.dataset.duration) || 0;
    function syncTime() {
      const d = isFinite(video.duration) && video.duration > 0 ? video.duration : knownDuration;
      if (!dragging) seek.value = video.currentTime;
      seek.max = d || 0;
      seek.disabled = !loaded || !d;
      seek.setAttribute("aria-valuetext", `${fmt(video.currentTime)} of ${fmt(d)}`);
      time.textContent = `${fmt(video.currentTime)} / ${fmt(d)}`;
    }
    for (const ev of ["timeupdate", "durationchange", "loadedmetadata", "seeked"]) video.addEventListener(ev, syncTime);
    syncTime();
    seek.addEventListener("input", () => { dragging = true; video.currentTime = parseFloat(seek.value); });
    seek.addEventListener("change", () => { dragging = false; });
    function seekBy(dt) {
      if (!loaded || !isFinite(video.duration)) return;
      video.currentTime = Math.min(Math.max(0, video.currentTime + dt), Math.max(0, video.duration - 0.1));
      hint(`${dt > 0 ? "+" : "−"}${Math.abs(dt)} s · ${fmt(video.currentTime)}`);
    }
    function syncVolume() {
      const silent = video.muted || video.volume === 0;
      mute.dataset.state = silent ? "muted" : "on";
      mute.setAttribute("aria-label", silent ? "Unmute" : "Mute");
      volume.value = video.muted ? 0 : video.volume;
    }
    video.addEventListener("volumechange", syncVolume);
    mute.addEventListener("click", () => toggleMute());
    volume.addEventListener("input", () => { video.volume = parseFloat(volume.value); video.muted = video.volume === 0; });
    // volumechange is a queued event: the control is synced at once too, so its label never
    // lags the state a key just set (screen readers read it right after the key press).
    function toggleMute() { video.muted = !video.muted; syncVolume(); hint(video.muted ? "Muted" : `Volume ${Math.round(video.volume * 100)} %`); }
    function volumeBy(dv) {
      video.muted = false;
      video.volume = Math.round(Math.min(1, Math.max(0, video.volume + dv)) * 100) / 100;
      syncVolume();
      hint(`Volume ${Math.round(video.volume * 100)} %`);
    }

    // Seek-bar preview: the time under the pointer, and the storyboard tile of that time when
    // the manifest carries an image track (shaka's getThumbnails: the sprite's URL and the tile's
    // offset in it); with none, only the time. Kept inside the stage at either end of the bar.
    async function storyboardAt(t) {
      const p = getPlayer();
      const track = p && p.getImageTracks ? p.getImageTracks()[0] : null;
      return track ? p.getThumbnails(track.id, t) : null;
    }
    let hoverSeq = 0;
    function placePreview(clientX) {
      const stageBox = stage.getBoundingClientRect(), half = preview.offsetWidth / 2;
      const x = clientX - stageBox.left;
      preview.style.left = `${Math.round(Math.min(Math.max(x, half), stageBox.width - half))}px`;
    }
    seek.addEventListener("pointermove", async (ev) => {
      const d = parseFloat(seek.max);
      if (!d) return;
      const seq = ++hoverSeq, box = seek.getBoundingClientRect();
      const frac = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
      preview.querySelector(".preview-time").textContent = fmt(frac * d);
      preview.dataset.time = String(frac * d);
      preview.hidden = false;
      placePreview(ev.clientX);
      const img = preview.querySelector(".preview-image"), thumb = await storyboardAt(frac * d).catch(() => null);
      if (seq !== hoverSeq) return;          // a later move already answered
      img.hidden = !thumb;
      if (thumb) {
        img.style.backgroundImage = `url("${thumb.uris[0]}")`;
        img.style.backgroundPosition = `-${thumb.positionX}px -${thumb.positionY}px`;
        img.style.width = `${thumb.width}px`; img.style.height = `${thumb.height}px`;
      }
      placePreview(ev.clientX);            // again: the tile may have changed the width
    });
    seek.addEventListener("pointerleave", () => { preview.hidden = true; });

    // ---- fullscreen ----------------------------------------------------------------------------
    function fullscreen() {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else if (player.requestFullscreen) player.requestFullscreen().catch(() => hint("Full screen is not available"));
    }
    $("ctl-fullscreen").addEventListener("click", fullscreen);
    document.addEventListener("fullscreenchange", () => {
      $("ctl-fullscreen").setAttribute("aria-label", document.fullscreenElement ? "Exit full screen" : "Full screen");
    });

    // ---- menus (quality, captions): menu buttons with radio items, arrows/Escape inside ------
    function openMenu(btn, menu, build) {
      const open = menu.hidden;
      closeMenus();
      if (!open) return;
      build();
      menu.hidden = false;
      btn.setAttribute("aria-expanded", "true");
      (menu.querySelector("[aria-checked=true]") || menu.querySelector("[role^=menuitem]")).focus();
    }
    function closeMenus(focusBack) {
      for (const [b, m] of [[qBtn, qMenu], [cBtn, cMenu], [sBtn, sMenu]]) {
        if (!m.hidden && focusBack) b.focus();
        m.hidden = true; b.setAttribute("aria-expanded", "false");
      }
    }
    function item(menu, label, checked, onPick, disabled) {
      const b = document.createElement("button");
      b.type = "button"; b.setAttribute("role", "menuitemradio"); b.textContent = label;
      b.setAttribute("aria-checked", checked ? "true" : "false");
      if (disabled) b.setAttribute("aria-disabled", "true");
      else b.addEventListener("click", () => { onPick(); closeMenus(true); });
      b.tabIndex = -1;
      menu.append(b);
      return b;
    }
    for (const menu of [qMenu, cMenu, sMenu]) {
      menu.addEventListener("keydown", (ev) => {
        const items = [...menu.querySelectorAll("[role^=menuitem]")], i = items.indexOf(document.activeElement);
        if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          items[(i + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
        } else if (ev.key === "Escape" || ev.key === "Tab") { closeMenus(ev.key === "Escape"); }
      });
    }
    document.addEventListener("click", (ev) => { if (!ev.target.closest(".menu-wrap")) closeMenus(); });

    const rungs = (p) => {
      const byHeight = new Map();
      for (const t of p.getVariantTracks()) {
        if (!t.height) continue;
        const best = byHeight.get(t.height);
        if (!best || t.bandwidth > best.bandwidth) byHeight.set(t.height, t);
      }
      return [...byHeight.values()].sort((a, b) => b.height - a.height);
    };
    const activeHeight = (p) => (p.getVariantTracks().find((t) => t.active) || {}).height;
    function syncQuality() {
      const p = getPlayer();
      if (!p || !loaded) return;
      const auto = p.getConfiguration().abr.enabled, h = activeHeight(p);
      qBtn.textContent = auto ? "Auto" : `${h}p`;
      qBtn.setAttribute("aria-label", `Quality: ${auto ? "Auto" : h + "p"}${h ? ` (playing ${h}p)` : ""}`);
    }
    function buildQuality() {
      qMenu.replaceChildren();
      const p = getPlayer();
      if (!p || !loaded) { item(qMenu, "Auto", true, null, true); return; }
      const auto = p.getConfiguration().abr.enabled, h = activeHeight(p);
      item(qMenu, h && auto ? `Auto (${h}p)` : "Auto", auto, () => {
        p.configure({ abr: { enabled: true } }); hint("Quality: Auto"); syncQuality();
      }).dataset.height = "auto";
      for (const t of rungs(p)) {
        item(qMenu, `${t.height}p`, !auto && t.height === h, () => {
          p.configure({ abr: { enabled: false } });
          p.selectVariantTrack(t, /* clearBuffer */ true);
          hint(`Quality: ${t.height}p`); syncQuality();
        }).dataset.height = String(t.height);
      }
    }
    function buildCaptions() {
      cMenu.replaceChildren();
      const p = getPlayer(), tracks = p && loaded ? p.getTextTracks() : [];
      if (!tracks.length) { item(cMenu, "No captions", true, null, true); return; }
      const on = p.isTextTrackVisible();
      item(cMenu, "Off", !on, () => p.setTextTrackVisibility(false));
      for (const t of tracks) {
        item(cMenu, t.label || t.language || "Captions", on && t.active, () => {
          p.selectTextTrack(t); p.setTextTrackVisibility(true);
        });
      }
    }
    // Speed: the menu and Shift+. / Shift+, (">" and "<") offer only rates the key pace keeps
    // up with. A faster rate set some other way (a browser extension) plays, but outruns the
    // keys after a while and waits for them: said when it is set, rather than left to look
    // like a slow network.
    const rates = RATES.filter((r) => r <= maxRate + 1e-9);
    const rateName = (r) => (r === 1 ? "Normal" : `${r}×`);
    // shaka holds the rate at 0 while it buffers: the viewer's speed is the one it goes back to.
    const rateNow = () => video.playbackRate || video.defaultPlaybackRate || 1;
    function syncSpeed() {
      const r = rateNow();
      sBtn.textContent = `${r}×`;
      sBtn.setAttribute("aria-label", `Speed: ${r}×${r === 1 ? " (normal)" : ""}`);   // the text, and more
    }
    function setRate(r) {
      video.defaultPlaybackRate = r;   // kept by a (re)load of the media, which resets playbackRate
      video.playbackRate = r;
      hint(`Speed: ${rateName(r)}`);
    }
    function rateBy(step) {
      const i = rates.indexOf(rateNow());
      setRate(rates[i < 0 ? rates.indexOf(1) : Math.min(rates.length - 1, Math.max(0, i + step))]);
    }
    function buildSpeed() {
      sMenu.replaceChildren();
      for (const r of rates) item(sMenu, rateName(r), r === rateNow(), () => setRate(r)).dataset.rate = String(r);
    }
    video.addEventListener("ratechange", () => {
      syncSpeed();
      if (video.playbackRate > maxRate + 1e-9) {
        hint(`Faster than ${maxRate}×, this protected video pauses now and then to wait for its keys`, 8000);
      }
    });
    sBtn.addEventListener("click", () => openMenu(sBtn, sMenu, buildSpeed));
    qBtn.addEventListener("click", () => openMenu(qBtn, qMenu, buildQuality));
    cBtn.addEventListener("click", () => openMenu(cBtn, cMenu, buildCaptions));
    function toggleCaptions() {
      const p = getPlayer(), tracks = p && loaded ? p.getTextTracks() : [];
      if (!tracks.length) { hint("No captions for this video yet"); return; }
      p.setTextTrackVisibility(!p.isTextTrackVisible());
      hint(p.isTextTrackVisible() ? "Captions on" : "Captions off");
    }

    // ---- keyboard: inside the player, or with nothing focused (the page itself) -------------
    // Elsewhere (a link, the security panel) keys keep their own meaning; on the page itself
    // Up/Down still scroll it; the volume slider keeps its own arrows.
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
      const t = ev.target;
      const onPage = t === document.body || t === document.documentElement;
      if (!onPage && !(t.closest && t.closest("#player"))) return;
      if (t.closest && (t.closest(".menu") || t.closest("form") || t.isContentEditable)) return;
      const range = t.tagName === "INPUT" && t.type === "range";
      if (TYPING.has(t.tagName) && !range) return;
      if (range && t.id !== "seek" && ev.key.startsWith("Arrow")) return;
      const pressable = ["BUTTON", "A", "SUMMARY"].includes(t.tagName);
      const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      const actions = {
        " ": pressable ? null : toggle, k: toggle,
        ArrowLeft: () => seekBy(-5), ArrowRight: () => seekBy(5),
        ArrowUp: onPage ? null : () => volumeBy(0.1), ArrowDown: onPage ? null : () => volumeBy(-0.1),
        f: fullscreen, m: toggleMute, c: toggleCaptions, ">": () => rateBy(1), "<": () => rateBy(-1),
      };
      const act = actions[key];
      if (!act) return;
      ev.preventDefault();
      act();
    });

    // ---- the error overlay: on the video, focused, announced, with what to do --------------
    function error(err) {
      const e = explain(err);
      $("overlay-title").textContent = e.title;
      $("overlay-text").textContent = e.text;
      $("overlay-retry").hidden = !e.retry;
      $("overlay-help").hidden = !e.help;
      $("overlay-library").hidden = !e.library;
      overlay.dataset.code = e.code || (err && err.code) || "error";
      overlay.hidden = false;
      bigPlay.hidden = true;
      closeMenus();
      overlay.focus();
    }
    // ``codes``: clear only an overlay that says one of these (playback resumed after
    // connection trouble leaves a refusal shown meanwhile where it is).
    function clearError(codes) {
      if (codes && !codes.includes(overlay.dataset.code)) return;
      overlay.hidden = true; delete overlay.dataset.code;
    }
    $("overlay-retry").addEventListener("click", () => { clearError(); onRetry(); });

    function setLoaded(p) {
      loaded = !!p;
      if (p && !p.svQualityWatched) {
        p.svQualityWatched = true;
        for (const ev of ["trackschanged", "variantchanged", "adaptation", "abrstatuschanged"]) p.addEventListener(ev, syncQuality);
      }
      bigPlay.hidden = loaded;
      syncTime(); syncPlay(); syncQuality();
    }
    function starting(on) {   // the first intent is being served: show that something happens
      bigPlay.disabled = on;
      stage.classList.toggle("busy", on);
    }
    syncVolume(); syncTime(); syncSpeed();
    return { error, clearError, setLoaded, starting, hint, activeHeight: () => activeHeight(getPlayer()) };
  }
  return { create, explain };
})();
