// The watch page around the player: the Share button (copies the page's link), the Download
// button (when the owner allows downloads: a ticket for one of this page's playback sessions,
// then the browser saves the watermarked MP4; docs/api.md "Downloads") and, on the
// "still processing" page, a poll of GET /api/library/{id} that loads the player once the video
// is ready (or says it failed) — the viewer never has to reload by hand.
"use strict";
(() => {
  const share = document.getElementById("share");
  if (share) {
    const status = document.getElementById("share-status");
    share.addEventListener("click", async () => {
      const url = new URL(share.dataset.url, location.origin).href;
      try {
        await navigator.clipboard.writeText(url);
        status.textContent = "Link copied.";
      } catch (e) {   // no clipboard (permission, insecure origin): show the link to copy by hand
        status.textContent = url;
      }
      share.dataset.copied = "true";
    });
  }

  const download = document.getElementById("download");
  if (download) {
    const status = document.getElementById("download-status");
    const ticket = async (fresh) => {
      const sid = await window.svSessionForDownload(fresh);
      return Device.call("POST", `/api/stream/sessions/${sid}/download`, {});
    };
    download.addEventListener("click", async () => {
      download.disabled = true;
      status.textContent = "Preparing your download…";
      try {
        let t;
        try { t = await ticket(false); } catch (e) {
          if (e.code !== "already_downloaded") throw e;
          t = await ticket(true);        // this session was downloaded already: a new one
        }
        const a = document.createElement("a");
        a.href = t.download_url;
        a.download = "";
        document.body.append(a);
        a.click();
        a.remove();
        status.textContent = "Download started. The file is marked for your account: a shared copy can be traced back to it.";
      } catch (e) {
        status.textContent = e.message;
      } finally {
        download.disabled = false;
      }
    });
  }

  const waiting = document.getElementById("processing");
  if (!waiting) return;
  const videoId = waiting.dataset.videoId;
  const line = document.getElementById("processing-status");
  const POLL_MS = 3000, SLOW_MS = 15000, SLOW_AFTER_MS = 5 * 60 * 1000;
  const since = Date.now();
  async function poll() {
    let v;
    try {
      v = await SV.api(`/api/library/${encodeURIComponent(videoId)}`);
    } catch (e) {
      if (e.status === 404 || e.status === 403) {   // deleted or made private meanwhile: stop polling
        document.getElementById("message-title").textContent = "Unavailable";
        document.getElementById("message").textContent = e.message;
        line.textContent = "";
        return;
      }
      line.textContent = "Could not check the video just now; trying again…";
      return schedule();
    }
    if (v.status === "ready") { location.reload(); return; }
    if (v.status === "failed") {
      document.getElementById("message-title").textContent = "Unavailable";
      document.getElementById("message").textContent = "This video is unavailable: its processing failed.";
      line.textContent = "";
      return;
    }
    line.textContent = "Still processing — this page opens the player by itself as soon as the video is ready.";
    schedule();
  }
  function schedule() {
    // A hidden tab asks nothing until it is shown again (a forgotten tab would poll for ever).
    const next = () => (document.hidden ? document.addEventListener("visibilitychange", poll, { once: true }) : poll());
    setTimeout(next, Date.now() - since > SLOW_AFTER_MS ? SLOW_MS : POLL_MS);
  }
  schedule();
})();
