// The webhooks page over /api/webhooks (docs/api.md "Webhooks") through SV (svclient.js:
// CSRF header, refresh on 401): list endpoints with their last attempts, register one (its
// secret shown once), send a test event, rotate the secret, enable, delete, redeliver.
"use strict";
(() => {
  const list = document.getElementById("endpoints");
  const tpl = document.getElementById("endpoint-tpl");
  const form = document.getElementById("new-endpoint");
  const newResult = document.getElementById("new-result");
  const secretBox = document.getElementById("secret-box");
  const base = "/api/webhooks";

  function showSecret(secret) {
    document.getElementById("secret-value").value = secret;
    document.getElementById("copy-secret").textContent = "Copy";
    secretBox.hidden = false;
    secretBox.focus();
  }

  function attemptRow(ep, a) {
    const tr = document.createElement("tr");
    const cells = [a.at.slice(0, 19).replace("T", " "), a.event_type, String(a.attempt),
      a.outcome + (a.status_code ? " (" + a.status_code + ")" : "") + (a.error && !a.status_code ? ": " + a.error : ""),
      a.latency_ms === null ? "" : a.latency_ms + " ms"];
    const labels = ["When (UTC)", "Event", "Attempt", "Result", "Latency"];   // the phone layout's row labels
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      td.dataset.label = labels[i];
      if (i === 3) td.className = "err";
      tr.appendChild(td);
    });
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "button secondary";
    b.textContent = "Redeliver";
    b.setAttribute("aria-label", "Redeliver " + a.event_type + " event of " + cells[0]);
    b.dataset.action = "redeliver";
    b.dataset.attempt = a.id;
    td.appendChild(b);
    tr.appendChild(td);
    return tr;
  }

  function render(ep) {
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.dataset.id = ep.id;
    li.querySelector(".ep-url").textContent = ep.url;
    li.querySelector(".ep-meta").textContent = ep.events.join(", ") + (ep.all_videos ? " · every video" : "") +
      (ep.description ? " · " + ep.description : "") + " · owner " + ep.owner + (ep.enabled ? "" : " · disabled");
    if (!ep.enabled) {
      const d = li.querySelector(".ep-disabled");
      d.hidden = false;
      d.textContent = "Disabled" + (ep.disabled_reason ? ": " + ep.disabled_reason : "");
      li.querySelector("[data-action=enable]").hidden = false;
    }
    const body = li.querySelector("tbody");
    (ep.attempts || []).forEach((a) => body.appendChild(attemptRow(ep, a)));
    if (!(ep.attempts || []).length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 6;
      td.className = "muted";
      td.textContent = "No deliveries yet.";
      tr.appendChild(td);
      body.appendChild(tr);
    }
    return li;
  }

  async function load() {
    const { items } = await SV.api(base);
    const full = await Promise.all(items.map((e) => SV.api(base + "/" + e.id)));
    list.replaceChildren(...full.map(render));
    document.getElementById("list-empty").hidden = full.length > 0;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const events = [...form.querySelectorAll("input[name=events]:checked")].map((i) => i.value);
    const all = form.querySelector("#wh-all");
    newResult.classList.remove("error");
    try {
      const ep = await SV.api(base, { method: "POST", body: {
        url: form.elements.url.value.trim(), description: form.elements.description.value, events,
        all_videos: !!(all && all.checked) } });
      newResult.textContent = "Endpoint added.";
      form.reset();
      await load();
      showSecret(ep.secret);
      SV.announce("Endpoint added; copy its secret now");
    } catch (err) {
      newResult.textContent = "Not added: " + err.message;
      newResult.classList.add("error");
      newResult.focus();
    }
  });

  list.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li[data-id]");
    const url = base + "/" + li.dataset.id;
    const result = li.querySelector(".ep-result");
    const action = button.dataset.action;
    if (action === "delete" && !window.confirm("Delete this endpoint? Its deliveries stop.")) return;
    button.disabled = true;
    result.classList.remove("error");
    try {
      if (action === "test") {
        await SV.api(url + "/test", { method: "POST" });
        result.textContent = "Test event queued; reload the list in a moment to see the attempt.";
      } else if (action === "rotate") {
        const r = await SV.api(url + "/rotate-secret", { method: "POST" });
        showSecret(r.secret);
        result.textContent = "Secret rotated: deliveries are signed with the new one from now on.";
      } else if (action === "enable") {
        await SV.api(url, { method: "PATCH", body: { enabled: true } });
        await load();
        return;
      } else if (action === "delete") {
        await SV.api(url, { method: "DELETE" });
        await load();
        SV.announce("Endpoint deleted");
        return;
      } else if (action === "redeliver") {
        await SV.api(url + "/attempts/" + button.dataset.attempt + "/redeliver", { method: "POST" });
        result.textContent = "Event queued again.";
      }
      SV.announce(result.textContent);
      result.focus();
    } catch (err) {
      result.textContent = "Failed: " + err.message;
      result.classList.add("error");
      result.focus();
    } finally {
      button.disabled = false;
    }
  });

  load().catch((err) => {
    const p = document.getElementById("list-empty");
    p.hidden = false;
    p.textContent = "Could not load the endpoints: " + err.message;
  });
})();
