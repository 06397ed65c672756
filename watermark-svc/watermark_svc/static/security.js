// Security console: playback sessions and security events, filtered and paged by the server
// (/api/admin/security/…), first pages refreshed every 5 s; a detail drawer (a modal <dialog>:
// focus moves in, Esc closes, focus returns to the row's button) with the actions, each done by
// the service that owns the data: end a session (streaming-svc), revoke a device, disable a user
// (auth-svc). Text only (textContent). SV (svcommon's svclient.js) adds the CSRF header and
// refreshes the 5-minute access cookie, so the console keeps working while open.
"use strict";
const $ = (id) => document.getElementById(id);
// Only when it changes: rewriting the same text would make screen readers repeat a live region.
const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };
const REFRESH_MS = 5000;

// ---- times and text ------------------------------------------------------------------------
const { ago, timeEl } = SV;     // (svclient.js: relative times, the exact one in the title)
const exact = SV.exactTime;

function retime() {
  for (const t of document.querySelectorAll("time[datetime]")) setText(t, ago(t.dateTime));
}

function cell(row, label, content, title) {
  const td = row.insertCell();
  td.dataset.label = label;
  if (content instanceof Node) td.append(content);
  else td.textContent = content ?? "—";
  if (title) td.title = title;
  return td;
}

function detailsButton(row, kind, id, label) {
  const td = row.insertCell();
  td.className = "act";
  const b = document.createElement("button");
  b.type = "button";
  b.className = "button secondary details";
  b.textContent = "Details";
  b.dataset.open = `${kind}:${id}`;
  b.setAttribute("aria-label", label);
  td.append(b);
}

// ---- the two lists ---------------------------------------------------------------------------
const lists = {
  sessions: { url: "/api/admin/security/sessions", form: $("session-filters"), page: 1, pages: 1, items: new Map() },
  events: { url: "/api/admin/security/events", form: $("event-filters"), page: 1, pages: 1, items: new Map() },
};

function query(list) {
  const params = new URLSearchParams({ page: list.page, per_page: 25 });
  for (const [name, value] of new FormData(list.form)) {
    if (!value) continue;
    if (name === "since" || name === "until") {
      const when = new Date(value);          // datetime-local: the browser's own time zone
      if (!isNaN(when)) params.set(name, when.toISOString());
    } else params.set(name, value.trim());
  }
  return params;
}

function sessionRow(body, x) {
  const row = body.insertRow();
  const state = cell(row, "State", x.state);
  state.className = x.active ? "state active" : "state";
  cell(row, "Started", timeEl(x.started_at));
  cell(row, "User", x.username || x.user_id, x.email || undefined);
  cell(row, "Video", x.video_title || x.video_id, x.video_title || undefined);
  cell(row, "Device", x.device_agent, x.device_user_agent || undefined);
  cell(row, "Address", x.ip);
  cell(row, "Watermark id", x.watermark_id, x.watermark_id).classList.add("id");
  detailsButton(row, "sessions", x.session_id, `Details of session ${x.session_id.slice(0, 8)} (${x.username || x.user_id})`);
}

function eventRow(body, x) {
  const row = body.insertRow();
  cell(row, "When", timeEl(x.created_at));
  cell(row, "Kind", x.kind);
  cell(row, "User", x.username || x.user_id);
  cell(row, "Address", x.ip);
  const detail = document.createElement("span");
  detail.textContent = x.detail || "";
  const path = document.createElement("span");
  path.className = "muted";
  path.textContent = x.path ? ` ${x.path}` : "";
  const both = document.createElement("span");      // one grid item in a phone's card
  both.append(detail, path);
  cell(row, "Detail", both, [x.detail, x.path].filter(Boolean).join(" · "));
  detailsButton(row, "events", x.id, `Details of the ${x.kind} event ${exact(x.created_at)}`);
}

// New kinds appear as they are first recorded (an admin action, say): keep the filter's list current.
function kindOptions(kinds) {
  const select = lists.events.form.elements.kind;
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join() === kinds.join()) return;
  const chosen = select.value;
  select.replaceChildren(select.options[0], ...kinds.map((k) => new Option(k, k)));
  select.value = chosen;
}

async function load(name, announce = false) {
  const list = lists[name];
  const data = await SV.api(`${list.url}?${query(list)}`);
  $(`${name}-error`).hidden = true;
  // Unchanged since the last refresh: only the relative times move (rows, focus and hover stay).
  const signature = JSON.stringify(data);
  if (signature === list.signature) { retime(); return; }
  list.signature = signature;
  list.pages = data.pages;
  list.items = new Map(data.items.map((x) => [name === "sessions" ? x.session_id : x.id, x]));
  const focused = document.activeElement?.dataset?.open;      // keep keyboard focus across a refresh
  const body = $(name).tBodies[0];
  body.replaceChildren();
  for (const x of data.items) (name === "sessions" ? sessionRow : eventRow)(body, x);
  if (!data.items.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = $(name).tHead.rows[0].cells.length;
    td.className = "empty";
    td.textContent = data.total ? "No more rows." : "Nothing matches these filters.";
  }
  if (focused) document.querySelector(`[data-open="${CSS.escape(focused)}"]`)?.focus();
  const where = `Page ${data.page} of ${data.pages} · ${data.total} ${name === "sessions" ? "sessions" : "events"}`;
  setText($(`${name}-page`), where);
  if (announce) SV.announce(where);       // what the user asked for, not every 5-s refresh
  $(`${name}-prev`).disabled = data.page <= 1;
  $(`${name}-next`).disabled = data.page >= data.pages;
  if (name === "sessions") setText($("active-count"), `(${data.active} active)`);
  if (data.kinds) kindOptions(data.kinds);
}

async function refresh(names = ["sessions", "events"], always = false) {
  const results = await Promise.allSettled(names.filter((n) => always || lists[n].page === 1).map(async (n) => {
    try { await load(n, always); } catch (e) { $(`${n}-error`).textContent = e.message; $(`${n}-error`).hidden = false; throw e; }
  }));
  const failed = results.find((r) => r.status === "rejected");
  $("updated").textContent = failed ? `Update failed: ${failed.reason.message}`
    : `Updated ${new Date().toLocaleTimeString()}; first pages refresh every 5 s.`;
}

for (const name of Object.keys(lists)) {
  const list = lists[name];
  list.form.addEventListener("submit", (e) => { e.preventDefault(); list.page = 1; list.signature = null; refresh([name], true); });
  list.form.addEventListener("reset", () => { setTimeout(() => { list.page = 1; refresh([name], true); }); });
  $(`${name}-prev`).addEventListener("click", () => { list.page = Math.max(1, list.page - 1); refresh([name], true); });
  $(`${name}-next`).addEventListener("click", () => { list.page = Math.min(list.pages, list.page + 1); refresh([name], true); });
}

// ---- the drawer ------------------------------------------------------------------------------
const drawer = $("drawer");
let current = null;      // {kind, item}
let opener = null;       // the button to give focus back to

function fact(dl, name, value) {
  if (value === null || value === undefined || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = String(value);
  dl.append(dt, dd);
}

function timeFact(iso) {
  if (!iso) return null;
  const span = document.createElement("span");
  span.append(timeEl(iso), ` (${exact(iso)})`);
  return span;
}

const who = (x) => x.username || x.user_id;
const ACTIONS = {
  endSession: {
    label: "End session", done: "The playback session was ended.",
    ask: (x) => `End this playback session of ${who(x)}? Its player is refused its next keys at once.`,
    run: (x) => SV.api(`/api/admin/sessions/${x.session_id}`, { method: "DELETE" }),
    apply: (x) => { x.active = false; x.state = "ended"; x.end_reason = "ended_by_admin"; },
  },
  revokeDevice: {
    label: "Revoke device", done: "The device was revoked; its playback sessions ended.",
    ask: (x) => `Revoke ${who(x)}'s device (${x.device_agent})? Its tokens are refused from now on and its sessions end.`,
    run: (x) => SV.api(`/api/admin/devices/${x.device_id}`, { method: "DELETE" }),
    apply: (x) => { x.device_revoked = true; if (x.active) { x.active = false; x.state = "ended"; } },
  },
  disableUser: {
    label: "Disable user", done: "The user was disabled: signed out everywhere, playback ended.",
    ask: (x) => `Disable the account ${who(x)}? They are signed out everywhere and cannot log in until enabled again.`,
    run: (x) => SV.api(`/api/admin/users/${x.user_id}`, { method: "PATCH", body: { disabled: true } }),
    apply: (x) => { x.user_disabled = true; if (x.active) { x.active = false; x.state = "ended"; } },
  },
};

function actionsFor(kind, x) {
  if (kind === "events") return x.user_id && !x.user_disabled ? ["disableUser"] : [];
  const out = [];
  if (x.active) out.push("endSession");
  if (x.device_id && !x.device_revoked) out.push("revokeDevice");
  if (x.user_id && !x.user_disabled) out.push("disableUser");
  return out;
}

function renderDrawer() {
  const { kind, item: x } = current;
  const dl = $("drawer-facts");
  dl.replaceChildren();
  if (kind === "sessions") {
    $("drawer-title").textContent = "Playback session";
    fact(dl, "State", x.state + (x.end_reason ? ` (${x.end_reason.replaceAll("_", " ")})` : ""));
    fact(dl, "Watermark id", x.watermark_id);
    fact(dl, "User", [x.username, x.email, x.user_disabled ? "disabled" : ""].filter(Boolean).join(" · "));
    fact(dl, "User id", x.user_id);
    fact(dl, "Video", x.video_title);
    fact(dl, "Video id", x.video_id);
    fact(dl, "Started", timeFact(x.started_at));
    fact(dl, "Last heartbeat", timeFact(x.last_heartbeat_at));
    fact(dl, x.active ? "Expires" : "Expired", x.ended_at ? null : timeFact(x.expires_at));
    fact(dl, "Ended", timeFact(x.ended_at));
    fact(dl, "Address", x.ip);
    fact(dl, "Device", [x.device_agent, x.device_revoked ? "revoked" : ""].filter(Boolean).join(" · "));
    fact(dl, "Device id", x.device_id);
    fact(dl, "User agent", x.device_user_agent);
    fact(dl, "Screen", x.device_screen);
    fact(dl, "Time zone", x.device_timezone);
    fact(dl, "Language", x.device_language);
    fact(dl, "Device first seen", timeFact(x.device_first_seen));
    fact(dl, "Key epoch", x.key_epoch);
    fact(dl, "Codeword length", x.codeword_length);
  } else {
    $("drawer-title").textContent = `Security event: ${x.kind}`;
    fact(dl, "When", timeFact(x.created_at));
    fact(dl, "Kind", x.kind);
    fact(dl, "Service", x.service);
    fact(dl, "User", [x.username, x.user_disabled ? "disabled" : ""].filter(Boolean).join(" · "));
    fact(dl, "User id", x.user_id);
    fact(dl, "By admin", x.actor_username || x.actor_id);
    fact(dl, "Address", x.ip);
    fact(dl, "Path", x.path);
    fact(dl, "Detail", x.detail);
    fact(dl, "Event id", x.id);
  }
  const box = $("drawer-actions");
  box.replaceChildren();
  for (const name of actionsFor(kind, x)) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = name === "endSession" ? "button secondary" : "button danger";
    b.textContent = ACTIONS[name].label;
    b.dataset.action = name;
    box.append(b);
  }
  $("drawer-confirm").hidden = true;
}

function openDrawer(kind, id, button) {
  const item = lists[kind].items.get(id);
  if (!item) return;
  current = { kind, item: structuredClone(item) };
  opener = button;
  $("drawer-status").textContent = "";
  renderDrawer();
  drawer.showModal();                 // modal: focus moves in, Tab stays inside, Esc closes
  $("drawer-close").focus();
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("[data-open]");
  if (b) { const [kind, id] = b.dataset.open.split(":"); openDrawer(kind, id, b); }
});
$("drawer-close").addEventListener("click", () => drawer.close());
drawer.addEventListener("close", () => {
  const back = opener && document.contains(opener) ? opener
    : document.querySelector(`[data-open="${CSS.escape(opener?.dataset.open || "")}"]`);
  back?.focus();
});
drawer.addEventListener("click", (e) => {           // a click on the backdrop (outside the drawer) closes it
  const r = drawer.getBoundingClientRect();
  if (e.target === drawer && (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom)) drawer.close();
});

let pending = null;
$("drawer-actions").addEventListener("click", (e) => {
  const b = e.target.closest("[data-action]");
  if (!b) return;
  pending = b.dataset.action;
  $("confirm-text").textContent = ACTIONS[pending].ask(current.item);
  $("confirm-yes").textContent = `Yes, ${ACTIONS[pending].label.toLowerCase()}`;
  $("drawer-confirm").hidden = false;
  $("confirm-yes").focus();
});
$("confirm-no").addEventListener("click", () => {
  $("drawer-confirm").hidden = true;
  $("drawer-actions").querySelector(`[data-action="${pending}"]`)?.focus();
  pending = null;
});
$("confirm-yes").addEventListener("click", async () => {
  const action = ACTIONS[pending];
  const yes = $("confirm-yes");
  yes.disabled = true;
  try {
    await action.run(current.item);
    action.apply(current.item);
    renderDrawer();
    $("drawer-status").textContent = action.done;
    $("drawer-status").className = "ok";
    SV.announce(action.done);
  } catch (err) {
    $("drawer-status").textContent = `Not done: ${err.message}`;
    $("drawer-status").className = "error";
    $("drawer-confirm").hidden = true;
  } finally {
    yes.disabled = false;
    pending = null;
    $("drawer-close").focus();
  }
  refresh(["sessions", "events"], true);
});

refresh(["sessions", "events"], true);
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);   // no queries for a hidden tab
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
