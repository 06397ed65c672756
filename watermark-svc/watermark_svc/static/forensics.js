// Trace-a-leak page: upload with progress (XHR: fetch has no upload progress), then poll
// the detection until it finishes; every value is inserted as text, never as HTML.
"use strict";
const $ = (id) => document.getElementById(id);

function cell(row, text) { const td = row.insertCell(); td.textContent = text ?? "—"; return td; }

function verdict(result) {
  if (!result) return "—";
  if (result.verdict === "inconclusive") {
    const best = result.inconclusive && result.inconclusive.best_candidate;
    return best ? `inconclusive: best candidate so far ${best.session_id}` : "inconclusive";
  }
  if (!result.match) return "no match";
  const who = result.match.user ? result.match.user.username : result.match.session_id;
  const more = result.also_accused && result.also_accused.length ? ` and ${result.also_accused.length} more session(s): a collusion` : "";
  return `match: ${who}${more} (p ≤ ${Number(result.false_accusation_probability).toExponential(1)})`;
}

async function refreshList() {
  let data;
  try { data = await SV.api("/api/forensics/detections?limit=25"); } catch (e) { return; }
  const body = $("detections").tBodies[0];
  body.replaceChildren();
  if (!data.items.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = 5; td.className = "empty"; td.textContent = "No detections yet: upload a copy above to trace it.";
  }
  for (const d of data.items) {
    const row = body.insertRow();
    row.insertCell().append(SV.timeEl(d.created_at)); cell(row, d.suspect_name); cell(row, d.status);
    cell(row, d.status === "failed" || d.status === "cancelled" ? d.error : verdict(d.result));
    const td = row.insertCell();
    if (d.status === "done") {
      const a = document.createElement("a"); a.href = d.result.report_url; a.textContent = "Report";
      a.setAttribute("aria-label", `Evidence report for ${d.suspect_name}`); td.append(a);
    }
    if (d.status === "queued" || d.status === "running") {
      const b = document.createElement("button"); b.type = "button"; b.className = "button secondary"; b.textContent = "Cancel";
      b.setAttribute("aria-label", `Cancel the detection of ${d.suspect_name}`);
      b.addEventListener("click", () => cancelDetection(d.job_id, b));
      td.append(b);
    }
  }
}

// DELETE stops a queued or running detection (its worker kills its ffmpeg children).
async function cancelDetection(id, button) {
  button.disabled = true;
  await SV.fetch(`/api/forensics/detect/${encodeURIComponent(id)}`, { method: "DELETE" }).catch(() => {});
  refreshList();
}

function showResult(job) {
  const res = job.result;
  $("result").hidden = false;
  const inc = res.verdict === "inconclusive" ? res.inconclusive : null;
  $("verdict").textContent = res.match ? "Match found" : inc ? "Inconclusive" : "No match";
  $("verdict").className = res.match ? "match" : inc ? "inconclusive" : "nomatch";
  const facts = $("facts");
  facts.replaceChildren();
  const add = (k, v) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v ?? "—"; facts.append(dt, dd); };
  if (res.match) {
    add("Session", res.match.session_id);
    add("Account", res.match.user ? `${res.match.user.username} (${res.match.user.email})` : null);
    add("Device", res.match.device_id); add("Address", res.match.ip); add("Session start", res.match.started_at && `${SV.ago(res.match.started_at)} (${SV.exactTime(res.match.started_at)})`);
    if (res.also_accused && res.also_accused.length) {
      add("Also accused (several sessions contributed)", res.also_accused.join(", "));
    }
  }
  if (inc && inc.best_candidate) {
    add("Best candidate so far (not an accusation)", inc.best_candidate.session_id);
    add("Evidence so far", `${inc.segments_agreeing} of ${inc.segments_read} segments agree`);
    add("More footage that would decide", inc.more_seconds_needed == null ? "not expected to decide"
      : `about ${inc.more_segments_needed} segments (${inc.more_seconds_needed} s)`);
  }
  if (res.ambiguity) add("Warning", res.ambiguity.warning);
  add("Video", res.video_title ? `${res.video_title} (${res.video_id})` : res.video_id);
  add("Method", res.method);
  add("False-accusation probability", res.false_accusation_probability == null ? null : Number(res.false_accusation_probability).toExponential(2));
  add("Segments read", String(res.segments_read));
  add("Conclusion", res.conclusion);
  $("report-link").href = res.report_url;
}

async function poll(url) {
  for (;;) {
    const job = await SV.api(url);
    $("job-progress").value = job.progress; $("job-status").textContent = job.status; $("job-step").textContent = job.step;
    if (job.status === "done") { showResult(job); return; }
    if (job.status === "failed" || job.status === "cancelled") { throw new Error(job.error || `detection ${job.status}`); }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

// SV.fetch cannot report upload progress, so the upload is the one XHR: it does SV's
// refresh-on-401 itself, once.
function upload(form, retried = false) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/forensics/detect");
    xhr.setRequestHeader("X-CSRF-Token", SV.csrf());
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round(100 * e.loaded / e.total);
      $("upload-progress").value = pct; $("upload-pct").textContent = pct + "%";
    };
    xhr.onload = () => {
      if (xhr.status === 202) resolve(xhr.response);
      else if (xhr.status === 401 && !retried) resolve(SV.refreshOrLogin().then(() => upload(form, true)));
      else reject(new Error((xhr.response && xhr.response.error) || `upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error("network error during upload"));
    xhr.send(new FormData(form));
  });
}

$("trace-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("job").hidden = false; $("result").hidden = true; $("error").hidden = true; $("submit").disabled = true;
  try {
    const job = await upload(ev.target);
    $("upload-progress").value = 100; $("upload-pct").textContent = "100%";
    await poll(job.status_url);
  } catch (err) {
    $("error").textContent = err.message; $("error").hidden = false;
  } finally {
    $("submit").disabled = false;
    refreshList();
  }
});
refreshList();
