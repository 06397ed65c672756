// Admin dashboard: the Retry button of a dead job calls the job admin API
// (POST /api/admin/jobs/{id}/retry) through SV (svcommon's svclient.js: CSRF header,
// refresh on 401) and says what happened in the job's row; the rest of the page is static.
"use strict";
document.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-retry]");
  if (!button) return;
  const item = button.closest("[data-job]");
  const result = item.querySelector(".retry-result");
  button.disabled = true;
  result.classList.remove("error");
  result.textContent = "Retrying…";
  try {
    const job = await SV.api("/api/admin/jobs/" + encodeURIComponent(button.dataset.retry) + "/retry", { method: "POST" });
    item.dataset.state = job.status;
    const badge = item.querySelector(".badge");
    badge.textContent = job.status;
    badge.classList.remove("bad");
    result.textContent = "Back in the queue (" + job.status + ") with fresh attempts.";
    button.remove();
    result.focus();                 // the button is gone: keep the keyboard where it was
    SV.announce(job.kind + " job queued again");
  } catch (err) {
    result.textContent = "Retry failed: " + err.message;
    result.classList.add("error");
    button.disabled = false;
    SV.announce("Retry failed: " + err.message);
  }
});
