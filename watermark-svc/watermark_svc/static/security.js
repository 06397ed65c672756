// Security console: sessions and security events, refreshed every 5 s; text only.
"use strict";
const $ = (id) => document.getElementById(id);
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text ?? "—"; if (cls) td.className = cls; return td; }

async function load() {
  const [s, e] = await Promise.all([
    fetch("/api/admin/security/sessions?limit=100", { credentials: "same-origin" }),
    fetch("/api/admin/security/events?limit=100", { credentials: "same-origin" }),
  ]);
  if (s.ok) {
    const data = await s.json();
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
  if (e.ok) {
    const body = $("events").tBodies[0];
    body.replaceChildren();
    for (const x of (await e.json()).items) {
      const row = body.insertRow();
      cell(row, x.created_at); cell(row, x.kind); cell(row, x.service); cell(row, x.username || x.user_id);
      cell(row, x.ip); cell(row, x.path); cell(row, x.detail);
    }
  }
}
load();
setInterval(load, 5000);
