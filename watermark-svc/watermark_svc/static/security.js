// Security console: sessions and security events, refreshed every 5 s; text only. SV (svcommon's
// svclient.js) refreshes the 5-minute access cookie, so the console keeps updating while open.
"use strict";
const $ = (id) => document.getElementById(id);
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text ?? "—"; if (cls) td.className = cls; return td; }

function showSessions(data) {
  $("active-count").textContent = `(${data.active} active)`;
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  for (const x of data.items) {
    const row = body.insertRow();
    cell(row, x.active ? "active" : (x.ended_at ? "ended" : "expired"), x.active ? "active" : "");
    cell(row, x.started_at); cell(row, x.username); cell(row, x.video_title);
    cell(row, [x.device_id, x.device_user_agent, x.device_screen].filter(Boolean).join(" · "));
    cell(row, x.ip); cell(row, x.watermark_id); cell(row, x.last_heartbeat_at);
  }
}

function showEvents(data) {
  const body = $("events").tBodies[0];
  body.replaceChildren();
  for (const x of data.items) {
    const row = body.insertRow();
    cell(row, x.created_at); cell(row, x.kind); cell(row, x.service); cell(row, x.username || x.user_id);
    cell(row, x.ip); cell(row, x.path); cell(row, x.detail);
  }
}

async function load() {
  const [s, e] = await Promise.allSettled([
    SV.api("/api/admin/security/sessions?limit=100"), SV.api("/api/admin/security/events?limit=100")]);
  if (s.status === "fulfilled") showSessions(s.value);
  if (e.status === "fulfilled") showEvents(e.value);
  const failed = [s, e].find((x) => x.status === "rejected");
  $("updated").textContent = failed ? `Update failed: ${failed.reason.message}` : `Updated ${new Date().toLocaleTimeString()}`;
}
load();
setInterval(load, 5000);
