// StreamVault upload web app: resumable tus uploads (tus-js-client), live status over SSE,
// edit and delete. Every piece of user data is inserted with textContent, never as HTML.
(function () {
  "use strict";
  const app = document.getElementById("app");
  const CHUNK = parseInt(app.dataset.chunkSize, 10);
  const MAX_BYTES = parseInt(app.dataset.maxBytes, 10);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const streams = new Map();   // video id -> EventSource

  // SV (svcommon's svclient.js): CSRF header and refresh-on-401 for every request of this page.
  async function api(method, url, body) { return (await SV.api(url, { method, body })) || {}; }

  function fmtBytes(n) {
    const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + u[i];
  }
  function fmtTime(s) {
    if (!isFinite(s) || s < 0) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
  }
  function serverError(err) {
    try {
      const body = err.originalResponse && err.originalResponse.getBody();
      const parsed = body && JSON.parse(body);
      if (parsed && parsed.error) return parsed.error;
    } catch (e) { /* not JSON */ }
    return (err && err.message) ? err.message.split("\n")[0] : "upload failed";
  }

  // ---- uploads --------------------------------------------------------------------------
  function startUpload(file) {
    const el = $("#transfer-tpl").content.firstElementChild.cloneNode(true);
    $("#transfers").prepend(el);
    $(".name", el).textContent = file.name;
    const state = $(".state", el), bar = $("progress", el), err = $(".error", el);
    bar.setAttribute("aria-label", "Upload progress of " + file.name);
    // Screen readers hear milestones (start, each quarter, the end), never every progress tick.
    let quarter = 0;
    const announce = (what) => SV.announce(file.name + ": " + what);
    const showError = (msg) => {
      err.textContent = msg; err.hidden = false; state.textContent = "failed"; el.dataset.state = "failed";
      announce("upload failed. " + msg);
    };
    if (file.size === 0) { showError("The file is empty."); return; }
    if (file.size > MAX_BYTES) { showError("The file is larger than the " + fmtBytes(MAX_BYTES) + " limit."); return; }
    const vis = $("#new-visibility").value;
    const meta = { filename: file.name, filetype: file.type || "application/octet-stream",
                   title: $("#new-title").value || "", visibility: vis };
    if (vis === "password") meta.password = $("#new-password").value;
    let samples = [];   // [time, bytes] over the last seconds, for speed and ETA
    const upload = new tus.Upload(file, {
      endpoint: "/api/uploads",
      chunkSize: CHUNK,
      retryDelays: [1000, 2000, 3000, 5000, 10000, 15000, 20000, 30000, 30000, 30000],
      metadata: meta,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onBeforeRequest(req) {
        req.setHeader("X-CSRF-Token", SV.csrf());
        // A chunk's start is a speed sample: its progress may arrive as one event (fast
        // links), and a single sample alone gives no speed.
        if (req.getMethod() === "PATCH") samples.push([performance.now(), Number(req.getHeader("Upload-Offset")) || 0]);
      },
      onShouldRetry(e) {
        const status = e.originalResponse ? e.originalResponse.getStatus() : 0;
        // An expired access cookie: refresh it, then tus retries after its delay.
        if (status === 401) { SV.refreshOrLogin().catch(() => {}); return true; }
        return status === 0 || status === 409 || status === 423 || status >= 500;
      },
      onProgress(sent, total) {
        const now = performance.now();
        samples.push([now, sent]);
        while (samples.length > 2 && now - samples[1][0] >= 5000) samples.shift();   // ~5-s window
        const pct = total ? (100 * sent / total) : 0;
        bar.value = pct;
        $(".percent", el).textContent = pct.toFixed(1) + "%";
        el.dataset.percent = pct.toFixed(1);
        if (samples.length > 1) {
          const dt = (now - samples[0][0]) / 1000, db = sent - samples[0][1];
          const speed = dt > 0 ? db / dt : 0;
          $(".speed", el).textContent = fmtBytes(speed) + "/s";
          $(".eta", el).textContent = speed > 0 ? "ETA " + fmtTime((total - sent) / speed) : "";
        }
        state.textContent = "uploading";
        if (Math.floor(pct / 25) > quarter && pct < 100) { quarter = Math.floor(pct / 25); announce(quarter * 25 + "% uploaded"); }
      },
      onSuccess() {
        bar.value = 100; $(".percent", el).textContent = "100%";
        state.textContent = "uploaded"; el.dataset.state = "done"; announce("uploaded");
        $(".actions", el).hidden = true;
        loadVideos();
      },
      onError(e) { showError(serverError(e)); $(".actions", el).hidden = true; loadVideos(); },
    });
    $(".pause", el).addEventListener("click", () => {
      upload.abort(); state.textContent = "paused"; el.dataset.state = "paused"; announce("paused");
      $(".pause", el).hidden = true; $(".resume", el).hidden = false; samples = [];
    });
    $(".resume", el).addEventListener("click", () => {
      upload.start(); state.textContent = "uploading"; el.dataset.state = "uploading"; announce("resumed");
      $(".pause", el).hidden = false; $(".resume", el).hidden = true;
    });
    $(".cancel", el).addEventListener("click", () => {
      upload.abort(true).then(() => { el.remove(); loadVideos(); }).catch((e) => showError(serverError(e)));
    });
    state.textContent = "starting"; el.dataset.state = "uploading"; announce("upload started");
    // Same file picked again (after a reload or a crash): continue where the server stopped.
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        state.textContent = "resuming";
      }
      upload.start();
    });
  }

  const zone = $("#drop-zone");
  if (zone) {
    const input = $("#file-input"), pick = $("#drop");
    ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
    zone.addEventListener("drop", (e) => { Array.from(e.dataTransfer.files).forEach(startUpload); });
    // The drop target is a button for mouse and keyboard alike: click, Enter or Space picks a file.
    pick.addEventListener("click", () => input.click());
    pick.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
    });
    input.addEventListener("change", (e) => { Array.from(e.target.files).forEach(startUpload); e.target.value = ""; });
    $("#new-visibility").addEventListener("change", (e) => { $("#new-password-row").hidden = e.target.value !== "password"; });
  }

  // ---- the uploader's videos --------------------------------------------------------------
  function renderStatus(li, v) {
    li.dataset.status = v.status;
    const badge = $(".status", li);
    badge.textContent = v.status;
    badge.className = "badge status status-" + v.status;
    $(".message", li).textContent = v.status === "uploading"
      ? "Upload incomplete (" + v.progress + "%). Drop the same file again to resume." : (v.message || "");
    const bar = $("progress", li);
    bar.setAttribute("aria-label", "Processing progress of " + v.title);
    bar.hidden = !(v.status === "processing" || v.status === "uploading");
    bar.value = v.progress || 0;
    $(".download", li).hidden = v.status === "uploading";
  }

  function follow(li, v) {
    if (v.status === "ready" || v.status === "failed" || streams.has(v.id)) return;
    const es = new EventSource("/api/videos/" + encodeURIComponent(v.id) + "/events");
    streams.set(v.id, es);
    es.addEventListener("status", (e) => {
      const s = JSON.parse(e.data);
      renderStatus(li, Object.assign(v, s));
      if (s.status === "ready" || s.status === "failed") { es.close(); streams.delete(v.id); }
    });
    // EventSource reconnects by itself when a stream ends, but not after an HTTP error (a 429
    // when too many streams are open): try again later while the video is still listed.
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) return;
      streams.delete(v.id);
      // EventSource cannot say why it failed; an expired access cookie is one reason, and a
      // plain GET through SV refreshes it (only if it has expired) before the next attempt.
      SV.fetch("/api/auth/profile").catch(() => {})
        .finally(() => setTimeout(() => { if (li.isConnected) follow(li, v); }, 10000));
    };
  }

  function renderVideo(v) {
    const li = $("#video-tpl").content.firstElementChild.cloneNode(true);
    li.dataset.id = v.id;
    $(".title", li).textContent = v.title;
    $(".description", li).textContent = v.description;
    $(".visibility", li).textContent = v.visibility;
    const bits = [fmtBytes(v.size)];
    if (v.duration) bits.push(fmtTime(v.duration));
    if (v.width) bits.push(v.width + "×" + v.height);
    if (v.original_filename) bits.push(v.original_filename);
    $(".meta", li).textContent = bits.join(" · ");
    if (v.thumbnail_url) {
      const img = document.createElement("img");
      img.src = v.thumbnail_url; img.alt = ""; img.width = 160; img.height = 90;
      $(".thumb", li).appendChild(img);
    }
    $(".download", li).href = "/api/videos/" + encodeURIComponent(v.id) + "/original";
    renderStatus(li, v);
    const form = $(".editor", li);
    $(".edit", li).addEventListener("click", () => {
      form.title.value = v.title; form.description.value = v.description; form.visibility.value = v.visibility;
      form.password.value = ""; form.hidden = false;
    });
    $(".cancel-edit", li).addEventListener("click", () => { form.hidden = true; });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { title: form.title.value, description: form.description.value, visibility: form.visibility.value };
      if (form.password.value) body.password = form.password.value;
      try {
        const r = await api("PATCH", "/api/videos/" + encodeURIComponent(v.id), body);
        Object.assign(v, r.video); form.hidden = true;
        $(".title", li).textContent = v.title; $(".description", li).textContent = v.description;
        $(".visibility", li).textContent = v.visibility;
      } catch (err) { $(".error", form).textContent = err.message; $(".error", form).hidden = false; }
    });
    $(".delete", li).addEventListener("click", async () => {
      if (!confirm("Delete \u201c" + v.title + "\u201d and all its files? This cannot be undone.")) return;
      try {
        await api("DELETE", "/api/videos/" + encodeURIComponent(v.id));
        const es = streams.get(v.id); if (es) { es.close(); streams.delete(v.id); }
        li.remove();
        $("#empty").hidden = $("#videos").children.length > 0;
      } catch (err) { $(".message", li).textContent = err.message; }
    });
    follow(li, v);
    return li;
  }

  // Storage used against the upload quota (an upload in progress counts at its full size).
  function showUsage(u) {
    const el = $("#usage");
    if (!u) return;
    el.textContent = u.quota_bytes === null
      ? "Storage used: " + fmtBytes(u.used_bytes) + " (no quota)."
      : "Storage used: " + fmtBytes(u.used_bytes) + " of your " + fmtBytes(u.quota_bytes) + " quota ("
        + fmtBytes(u.available_bytes) + " free).";
    el.dataset.used = u.used_bytes;
    el.hidden = false;
  }

  async function loadVideos() {
    try {
      const data = await api("GET", "/api/videos/mine");
      showUsage(data.usage);
      streams.forEach((es) => es.close());
      streams.clear();
      const list = $("#videos");
      list.replaceChildren(...data.items.map(renderVideo));
      $("#empty").hidden = data.items.length > 0;
    } catch (err) { $("#empty").textContent = "Could not load your videos: " + err.message; $("#empty").hidden = false; }
  }
  loadVideos();
})();
