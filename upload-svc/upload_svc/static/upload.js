// StreamVault upload web app, the transfers: resumable tus uploads (tus-js-client) with
// speed, ETA, pause, resume and cancel. The list of videos is dashboard.js (Dashboard).
// Every piece of user data is inserted with textContent, never as HTML.
(function () {
  "use strict";
  const app = document.getElementById("app");
  const CHUNK = parseInt(app.dataset.chunkSize, 10);
  // The first PATCH carries only the bytes the server judges a file by (svcommon.ffmpeg's
  // SNIFF_BYTES): a file that is no video is then refused at once. In one CHUNK, the refusal
  // came only once the browser had sent the chunk (Chromium reads an answer after its body)
  // or the gateway stopped draining it (nginx's 30 s then, 5 s now): on a slow uplink, half a
  // minute and 100 MiB spent on a mistake that the first 4 KiB show.
  const FIRST_CHUNK = Math.min(parseInt(app.dataset.firstChunk, 10), CHUNK);
  const MAX_BYTES = parseInt(app.dataset.maxBytes, 10);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const { fmtBytes, fmtTime, showError: showErrorNear, loadVideos } = Dashboard;

  // The server's message (any API error: size, quota, a refused title), else tus's first line.
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
    const state = $(".state", el), bar = $("progress", el), err = $(".error", el), notice = $(".notice", el);
    bar.setAttribute("aria-label", "Upload progress of " + file.name);
    // Screen readers hear milestones (start, each quarter, the end), never every progress tick.
    let quarter = 0;
    let onOnline = null;        // an interrupted transfer waits for the browser to be online (interrupted())
    const stopWaitingOnline = () => {
      if (onOnline) { window.removeEventListener("online", onOnline); onOnline = null; }
    };
    const announce = (what) => SV.announce(file.name + ": " + what);
    // An ended transfer (done, failed, cancelled) keeps its name, state and percent; its
    // controls, speed and ETA go, and a Dismiss button removes the card.
    const end = (how, label) => {
      stopWaitingOnline();
      notice.hidden = true;
      state.textContent = label; el.dataset.state = how;
      $(".actions", el).hidden = true; $(".speed", el).hidden = true; $(".eta", el).hidden = true;
      $(".dismiss", el).hidden = false;
    };
    const showError = (msg) => {
      end("failed", "failed");
      announce("upload failed. " + msg);
      showErrorNear(err, file.name + ": " + msg);
    };
    $(".dismiss", el).addEventListener("click", () => { el.remove(); $("#drop").focus(); });
    if (file.size === 0) { showError("The file is empty."); return; }
    if (file.size > MAX_BYTES) { showError("The file is larger than the " + fmtBytes(MAX_BYTES) + " limit."); return; }
    const titleInput = $("#new-title"), passwordInput = $("#new-password");
    const vis = $("#new-visibility").value;
    const meta = { filename: file.name, filetype: file.type || "application/octet-stream",
                   title: titleInput.value || "", visibility: vis };
    if (vis === "password") meta.password = passwordInput.value;
    let samples = [];   // [time, bytes] over the last seconds, for speed and ETA
    const upload = new tus.Upload(file, {
      endpoint: "/api/uploads",
      chunkSize: FIRST_CHUNK,
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
        if (navigator.onLine === false) return false;         // nothing to retry until online: interrupted()
        const status = e.originalResponse ? e.originalResponse.getStatus() : 0;
        // An expired access cookie: refresh it, then tus retries after its delay.
        if (status === 401) { SV.refreshOrLogin().catch(() => {}); return true; }
        return status === 0 || status === 409 || status === 423 || status >= 500;
      },
      onChunkComplete() { upload.options.chunkSize = CHUNK; },     // judged: the rest in full chunks
      // The video exists from now on: list it ("uploading") rather than "No videos yet".
      onUploadUrlAvailable() { loadVideos(); },
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
        bar.value = 100; $(".percent", el).textContent = "100%"; el.dataset.percent = "100.0";
        end("done", "uploaded"); announce("uploaded");
        // The form is ready for the next file: this upload's title and password go (unless
        // the uploader has already typed the next ones).
        if (titleInput.value === meta.title) titleInput.value = "";
        if (vis === "password" && passwordInput.value === meta.password) passwordInput.value = "";
        loadVideos();
      },
      onError(e) {
        if (connectionLost(e)) interrupted();
        else { showError(serverError(e)); loadVideos(); }
      },
    });
    // Connection trouble (offline, or the server unreachable through every retry: 2.5 min)
    // pauses the transfer instead of failing it. The server keeps what it has; Resume, or
    // the browser coming back online, continues from there. Before, the transfer failed and
    // the file had to be picked again.
    const connectionLost = (e) => !!e.originalRequest && !(e.originalResponse && e.originalResponse.getStatus() > 0
                                                           && e.originalResponse.getStatus() < 500);
    function interrupted() {
      const msg = navigator.onLine === false
        ? "You're offline: the upload goes on by itself once you're back online."
        : "The server could not be reached. Nothing sent is lost: Resume continues where it stopped.";
      paused("paused. " + msg);
      notice.textContent = msg; notice.hidden = false;
      if (!onOnline) { onOnline = () => resume(); window.addEventListener("online", onOnline); }
    }
    // Paused (by the uploader or by interrupted()): Resume instead of Pause, no speed or ETA.
    function paused(said) {
      state.textContent = "paused"; el.dataset.state = "paused"; announce(said);
      $(".pause", el).hidden = true; $(".resume", el).hidden = false; samples = [];
      $(".speed", el).textContent = ""; $(".eta", el).textContent = "";
    }
    function resume() {
      stopWaitingOnline();
      notice.hidden = true;
      upload.start(); state.textContent = "uploading"; el.dataset.state = "uploading"; announce("resumed");
      $(".pause", el).hidden = false; $(".resume", el).hidden = true;
    }
    $(".pause", el).addEventListener("click", () => {
      upload.abort(); paused("paused");
      $(".resume", el).focus();
    });
    $(".resume", el).addEventListener("click", () => { resume(); $(".pause", el).focus(); });
    $(".cancel", el).addEventListener("click", () => {
      $(".cancel", el).disabled = true;
      upload.abort(true).then(() => {
        end("cancelled", "cancelled"); announce("cancelled");
        $(".dismiss", el).focus();
        loadVideos();
      }).catch((e) => { $(".cancel", el).disabled = false; showError(serverError(e)); });
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
})();
