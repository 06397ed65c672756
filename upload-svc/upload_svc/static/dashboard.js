// StreamVault uploader dashboard: the uploader's videos with live status over SSE (stage,
// percent and an ETA while processing, the thumbnail and a Watch link once playable), edit
// (with the caption tracks: captions.js), delete and bulk actions, and the page's toasts. upload.js (the transfers) uses Dashboard.
// Every piece of user data is inserted with textContent, never as HTML.
const Dashboard = (() => {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const streams = new Map();   // video id -> EventSource
  const rows = new Map();      // video id -> {li, v}
  let bulkRunning = false;

  async function api(method, url, body) { return (await SV.api(url, { method, body })) || {}; }

  // Binary units, written as the server writes them (svcommon.quota.format_bytes): "5 MiB".
  function fmtBytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1).replace(/\.0$/, "") : String(Math.round(n))) + " " + u[i];
  }
  function fmtTime(s) {
    if (!isFinite(s) || s < 0) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
  }

  // ---- toasts: one status region (confirmations) and one alert region (errors) ----------
  const toastTimers = {};
  function toast(text, kind) {
    const el = $(kind === "error" ? "#toast-alert" : "#toast-status");
    el.textContent = text;
    clearTimeout(toastTimers[el.id]);
    toastTimers[el.id] = setTimeout(() => { el.textContent = ""; }, kind === "error" ? 12000 : 6000);
  }
  // An error next to what failed, scrolled into view, and the same words in the alert toast.
  function showError(el, text) {
    el.textContent = text; el.hidden = false;
    el.scrollIntoView({ block: "center" });
    toast(text, "error");
  }

  // ---- processing estimate: rate of the percent over the last minute ---------------------
  // "estimating…" until two samples of one phase (to playable, then the whole ladder).
  function estimate(li, phase, pct) {
    const now = performance.now();
    let est = li._estimate;
    if (!est || est.phase !== phase || pct < est.samples[est.samples.length - 1][1]) {
      est = li._estimate = { phase, samples: [] };
    }
    const s = est.samples;
    if (!s.length || pct > s[s.length - 1][1]) s.push([now, pct]);
    while (s.length > 2 && now - s[1][0] >= 60000) s.shift();
    if (s.length < 2) return "estimating\u2026";
    const rate = (s[s.length - 1][1] - s[0][1]) / ((s[s.length - 1][0] - s[0][0]) / 1000);
    if (!(rate > 0)) return "estimating\u2026";
    const left = Math.max(0, (100 - pct) / rate);
    return (phase === "ladder" ? "all qualities in about " : "playable in about ") + (fmtTime(left) || "0s");
  }

  function settled(v) { return v.status === "failed" || (v.status === "ready" && !v.encoding); }

  function setThumb(li, v) {
    const box = $(".thumb", li);
    if (!v.thumbnail_url || box.dataset.src === v.thumbnail_url) return;
    const img = document.createElement("img");
    img.src = v.thumbnail_url; img.alt = ""; img.width = 160; img.height = 90;
    box.replaceChildren(img);
    box.dataset.src = v.thumbnail_url;
  }

  function renderStatus(li, v) {
    const was = li.dataset.status;
    li.dataset.status = v.status;
    const badge = $(".status", li);
    badge.textContent = v.status;
    badge.className = "badge status status-" + v.status;
    const growing = v.status === "ready" && v.encoding;
    const working = v.status === "processing" || growing;
    $(".message", li).textContent = v.status === "uploading"
      ? "Upload incomplete (" + v.progress + "%). Drop the same file again to resume." : (v.message || "");
    const pct = growing ? v.encode_progress : (v.progress || 0);
    $(".work", li).hidden = !(working || v.status === "uploading");
    const bar = $(".work progress", li);
    bar.value = pct;
    bar.setAttribute("aria-label", (v.status === "uploading" ? "Upload" : "Processing") + " progress of " + v.title);
    $(".work-percent", li).textContent = pct.toFixed(0) + " %";
    li.dataset.percent = pct.toFixed(1);
    $(".work-eta", li).textContent = working ? estimate(li, growing ? "ladder" : "playable", pct) : "";
    const watch = $(".watch", li);
    watch.hidden = v.status !== "ready";
    watch.href = "/watch/" + encodeURIComponent(v.id);
    const stats = $(".analytics", li);
    stats.hidden = v.status !== "ready";
    stats.href = "/upload/videos/" + encodeURIComponent(v.id) + "/analytics";
    $(".download", li).hidden = v.status === "uploading";
    setThumb(li, v);
    if (was && was !== "ready" && v.status === "ready") SV.announce(v.title + ": ready to watch");
    if (was && was !== "failed" && v.status === "failed") SV.announce(v.title + ": processing failed");
  }

  function follow(li, v) {
    if (settled(v) || streams.has(v.id)) return;
    const es = new EventSource("/api/videos/" + encodeURIComponent(v.id) + "/events");
    streams.set(v.id, es);
    es.addEventListener("status", (e) => {
      const s = JSON.parse(e.data);
      renderStatus(li, Object.assign(v, s));
      if (settled(s)) { es.close(); streams.delete(v.id); }
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

  function stopFollowing(id) {
    const es = streams.get(id);
    if (es) { es.close(); streams.delete(id); }
  }

  function removeRow(id) {
    const row = rows.get(id);
    stopFollowing(id);
    if (row) row.li.remove();
    rows.delete(id);
    $("#empty").hidden = rows.size > 0;
    updateBulk();
  }

  function renderText(li, v) {
    $(".title", li).textContent = v.title;
    $(".description", li).textContent = v.description;
    $(".visibility", li).textContent = v.visibility;
    $(".downloads", li).hidden = !v.downloads_allowed;
    $(".select-video", li).setAttribute("aria-label", "Select \u201c" + v.title + "\u201d");
  }

  function renderVideo(v) {
    const li = $("#video-tpl").content.firstElementChild.cloneNode(true);
    li.dataset.id = v.id;
    rows.set(v.id, { li, v });
    renderText(li, v);
    const bits = [fmtBytes(v.size)];
    if (v.duration) bits.push(fmtTime(v.duration));
    if (v.width) bits.push(v.width + "\u00d7" + v.height);
    if (v.original_filename) bits.push(v.original_filename);
    if (v.status === "ready") bits.push(v.views + (v.views === 1 ? " view" : " views"));
    $(".meta", li).textContent = bits.join(" \u00b7 ");
    $(".download", li).href = "/api/videos/" + encodeURIComponent(v.id) + "/original";
    $(".select-video", li).addEventListener("change", updateBulk);
    renderStatus(li, v);
    const form = $(".editor", li), formError = $(".error", form);
    const pwRow = () => { $(".pw", form).hidden = form.visibility.value !== "password"; };
    form.visibility.addEventListener("change", pwRow);
    $(".edit", li).addEventListener("click", () => {
      form.title.value = v.title; form.description.value = v.description; form.visibility.value = v.visibility;
      form.password.value = ""; form.password.placeholder = v.has_password ? "(unchanged)" : "";
      form.downloads_allowed.checked = !!v.downloads_allowed;
      formError.hidden = true; pwRow(); form.hidden = false;
      CaptionPanel.open(li, v, { toast, showError });
      form.title.focus();
    });
    $(".cancel-edit", li).addEventListener("click", () => {
      form.hidden = true; CaptionPanel.close(li); $(".edit", li).focus();
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { title: form.title.value, description: form.description.value, visibility: form.visibility.value,
                     downloads_allowed: form.downloads_allowed.checked };
      if (form.password.value && body.visibility === "password") body.password = form.password.value;
      try {
        const r = await api("PATCH", "/api/videos/" + encodeURIComponent(v.id), body);
        Object.assign(v, r.video); form.hidden = true; formError.hidden = true; CaptionPanel.close(li);
        renderText(li, v);
        toast("Saved \u201c" + v.title + "\u201d.");
        $(".edit", li).focus();
      } catch (err) { showError(formError, "Not saved: " + err.message); }
    });
    $(".delete", li).addEventListener("click", async () => {
      if (!confirm("Delete \u201c" + v.title + "\u201d and all its files? This cannot be undone.")) return;
      try {
        await deleteVideo(v.id);
        removeRow(v.id);
        toast("Deleted \u201c" + v.title + "\u201d.");
      } catch (err) { showError($(".row-error", li), "Not deleted: " + err.message); }
    });
    follow(li, v);
    return li;
  }

  // Storage used against the upload quota (an upload in progress counts at its full size).
  function showUsage(u) {
    const el = $("#usage");
    if (!u || !el) return;
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
      // Reconciled, not rebuilt (it runs after every transfer): the rows kept keep their
      // selection, errors, estimates and progress streams, and a bulk run its rows.
      const listed = new Set(data.items.map((v) => v.id));
      [...rows.keys()].filter((id) => !listed.has(id)).forEach(removeRow);
      const list = $("#videos");
      data.items.forEach((item, i) => {
        const row = rows.get(item.id);
        let li;
        if (row) {
          li = row.li;
          Object.assign(row.v, item);
          renderText(li, row.v);
          if (!streams.has(item.id)) { renderStatus(li, row.v); follow(li, row.v); }   // else its stream is newer
        } else li = renderVideo(item);
        if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
      });
      $("#empty").textContent = "No videos yet.";
      $("#empty").hidden = data.items.length > 0;
    } catch (err) { $("#empty").textContent = "Could not load your videos: " + err.message; $("#empty").hidden = false; }
    updateBulk();
  }

  // A video that is already gone (deleted in another tab) is what a delete wanted.
  async function deleteVideo(id) {
    try { await api("DELETE", "/api/videos/" + encodeURIComponent(id)); }
    catch (err) { if (err.status !== 404) throw err; }
  }

  // ---- bulk actions: select rows, confirm, then one API call per video -------------------
  const ACTIONS = {
    public: { verb: "Make public", doing: "Making public", done: "made public", call: (id) => api("PATCH", "/api/videos/" + encodeURIComponent(id), { visibility: "public" }) },
    private: { verb: "Make private", doing: "Making private", done: "made private", call: (id) => api("PATCH", "/api/videos/" + encodeURIComponent(id), { visibility: "private" }) },
    delete: { verb: "Delete", doing: "Deleting", done: "deleted", call: deleteVideo },
  };
  const picked = () => [...rows.values()].filter((r) => $(".select-video", r.li).checked);

  function updateBulk() {
    const bulk = $("#bulk");
    if (!bulk) return;
    const n = picked().length, total = rows.size, all = $("#select-all");
    bulk.hidden = total === 0;
    $("#selected-count").textContent = n + " of " + total + " selected";
    all.checked = total > 0 && n === total;
    all.indeterminate = n > 0 && n < total;
    bulk.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = n === 0 || bulkRunning; });
    all.disabled = bulkRunning;
  }

  function confirmBulk(action, chosen) {
    const dlg = $("#bulk-confirm"), a = ACTIONS[action];
    const what = chosen.length === 1 ? "1 video" : chosen.length + " videos";
    $("#bulk-confirm-title").textContent = a.verb + " " + what + "?";
    $("#bulk-confirm-text").textContent = action === "delete"
      ? "Their files are removed for good; this cannot be undone."
      : (action === "public" ? "Anyone signed in will be able to find and watch them." : "Only you will be able to watch them; viewers watching now are stopped.");
    $("#bulk-confirm-list").replaceChildren(...chosen.slice(0, 8).map((r) => {
      const item = document.createElement("li"); item.textContent = r.v.title; return item;
    }));
    $("#bulk-confirm-more").textContent = chosen.length > 8 ? "and " + (chosen.length - 8) + " more" : "";
    const ok = $("#bulk-confirm-ok");
    ok.textContent = a.verb; ok.classList.toggle("danger", action === "delete");
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
      dlg.returnValue = "";
      dlg.showModal();
    });
  }

  async function runBulk(action) {
    const chosen = picked(), a = ACTIONS[action];
    if (!chosen.length || bulkRunning || !(await confirmBulk(action, chosen))) return;
    ["#toast-status", "#toast-alert"].forEach((id) => { $(id).textContent = ""; });   // earlier news
    bulkRunning = true; updateBulk();
    const box = $("#bulk-progress"), bar = $("progress", box), status = $("#bulk-status");
    box.hidden = false; bar.max = chosen.length; bar.value = 0;
    const failed = [];
    for (const [i, r] of chosen.entries()) {
      status.textContent = a.doing + " " + (i + 1) + " of " + chosen.length + "\u2026";
      const err = $(".row-error", r.li);
      try {
        const res = await a.call(r.v.id);
        err.hidden = true;
        if (action === "delete") removeRow(r.v.id);
        else { Object.assign(r.v, res.video); renderText(r.li, r.v); $(".select-video", r.li).checked = false; }
      } catch (e) {
        failed.push(r);
        err.textContent = a.verb + " failed: " + e.message; err.hidden = false;
      }
      bar.value = i + 1;
    }
    bulkRunning = false; updateBulk();
    const ok = chosen.length - failed.length;
    status.textContent = ok + " " + a.done + (failed.length ? ", " + failed.length + " failed" : "") + ".";
    if (failed.length) {
      failed[0].li.scrollIntoView({ block: "center" });
      toast(failed.length + " of " + chosen.length + " could not be " + a.done + ": " +
            failed.map((r) => "\u201c" + r.v.title + "\u201d").join(", ") + ". See the marked videos.", "error");
    } else {
      toast((ok === 1 ? "1 video " : ok + " videos ") + a.done + ".");
    }
  }

  const bulk = $("#bulk");
  if (bulk) {
    $("#select-all").addEventListener("change", (e) => {
      rows.forEach((r) => { $(".select-video", r.li).checked = e.target.checked; });
      updateBulk();
    });
    bulk.querySelectorAll("button[data-action]").forEach((b) => {
      b.addEventListener("click", () => runBulk(b.dataset.action));
    });
  }

  loadVideos();
  return { fmtBytes, fmtTime, toast, showError, loadVideos };
})();
